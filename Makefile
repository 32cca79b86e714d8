# caretaker.ops developer and CI entry points. `make test` on a fresh Debian 12 machine (as
# root) installs what is missing and runs every check; .ci/run calls it.
#   make test                  everything below, in order, with a timing table at the end
#   make install               Debian packages and the Python virtualenv (skipped when present)
#   make images                the Debian 12/13 test images and a fresh Debian 12 host (rebuilt when their recipe changes)
#   make lint sanity unit integration build molecule
#   make molecule MOLECULE_SCENARIOS="runtime jobs" [MOLECULE_JOBS=2]
#   make demo / make demo-clean     a local fleet of three systemd containers
#   make bench [NAME=runner_start]  benchmarks (never part of `make test`)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
BUILD := $(CURDIR)/.build
HARNESS := tests/harness

# Debian packages the tests, the image builds and the real services need.
APT_PACKAGES = podman runc debootstrap uidmap containernetworking-plugins python3-venv git \
	shellcheck time postgresql age supervisor logrotate cron redis-server pebble certbot zstd unattended-upgrades \
	haproxy gunicorn python3-alembic python3-psycopg2 python3-psycopg python3-zstandard python3-cryptography \
	chromium chromium-driver

# The venv's tools come first; podman always uses runc and this machine's ulimits.
export PATH := $(BIN):$(PATH)
export CONTAINERS_CONF := $(CURDIR)/$(HARNESS)/containers.conf
# This checkout is the collection caretaker.ops (a symlink tree under .build/collections);
# the collections bundled with the `ansible` package in the venv are found after it.
COLLECTIONS := $(BUILD)/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
# Ansible's home (and so ~/.ansible/collections, where molecule and ansible-lint may leave
# copies of this collection) lives in the checkout: a stale copy from another checkout can
# never shadow this one.
export ANSIBLE_HOME := $(BUILD)/ansible-home
# Molecule's container names end with this, so checkouts on one machine never share them.
export CARETAKER_CHECKOUT := $(shell printf %s "$(CURDIR)" | sha256sum | cut -c1-6)
# Molecule boots the images of this checkout's recipe (build-images.sh tags them
# debian12-<recipe>): another checkout's `make images` retags plain debian12 to its own.
IMAGE_RECIPE := $(shell $(HARNESS)/build-images.sh --recipe)
export CARETAKER_DEBIAN12_TAG := debian12-$(IMAGE_RECIPE)
export CARETAKER_DEBIAN13_TAG := debian13-$(IMAGE_RECIPE)
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0

# Scenarios left out of `make test` while they are not green end to end (none now).
MOLECULE_UNFINISHED ?=
MOLECULE_SCENARIOS ?= $(filter-out shared $(MOLECULE_UNFINISHED),$(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
TEST_STAGES ?= install images lint sanity unit integration build molecule
NAME ?=

.PHONY: test install apt venv images collection lint ruff ansible-lint pipelines sanity unit integration \
	build molecule demo demo-clean bench clean

test:
	MAKE="$(MAKE)" $(HARNESS)/stages.sh $(TEST_STAGES)

install: apt venv

apt:
	$(HARNESS)/install-apt.sh $(APT_PACKAGES)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt test-requirements.txt $(wildcard requirements-*.txt)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r test-requirements.txt
	touch $@

# The images need podman and debootstrap: whichever command runs first installs them.
images: apt
	$(HARNESS)/build-images.sh
	CARETAKER_IMAGE=localhost/caretaker-fresh CARETAKER_IMAGE_PACKAGES=$(HARNESS)/fresh-host-packages.txt \
		$(HARNESS)/build-images.sh debian12

# Ansible finds this checkout as caretaker.ops through a symlink, so edits apply at once.
collection: $(COLLECTIONS)/ansible_collections/caretaker/ops

$(COLLECTIONS)/ansible_collections/caretaker/ops:
	mkdir -p $(@D)
	ln -sfn $(CURDIR) $@

lint: ruff ansible-lint pipelines

ruff: venv
	ruff check plugins tests bench

ansible-lint: venv collection
	ansible-lint --offline

# The pipeline examples under docs/ against GitHub's workflow schema (vendored, offline).
pipelines: venv
	check-jsonschema --builtin-schema vendor.github-workflows docs/pipelines/github-actions-*.yml

sanity: venv
	$(HARNESS)/sanity.sh

unit: venv
	pytest tests/unit

integration: venv
	pytest tests/integration

# Build the release tarball, install it into a scratch collections path and run a module
# from the installed copy.
build: venv
	rm -rf $(BUILD)/dist
	ansible-galaxy collection build --force --output-path $(BUILD)/dist .
	$(HARNESS)/check-build.sh $(BUILD)/dist/caretaker-ops-*.tar.gz

# Independent scenarios run MOLECULE_JOBS at a time, each into a log of its own (a failed
# one's log is printed); a table of per-scenario times ends the output.
MOLECULE_JOBS ?= 2
molecule: venv collection images
	@test -n "$(MOLECULE_SCENARIOS)" || { echo "no molecule scenarios under molecule/"; exit 0; }
	MOLECULE_JOBS=$(MOLECULE_JOBS) $(HARNESS)/molecule.sh $(MOLECULE_SCENARIOS)

demo: install images collection
	$(HARNESS)/demo.sh up

demo-clean:
	$(HARNESS)/demo.sh clean

# The benchmarks start real services (PostgreSQL, HAProxy, gunicorn) and, for fleet, containers.
bench: install images collection
	@if [ -n "$(NAME)" ]; then python bench/$(NAME).py; else \
		failed=""; for script in bench/*.py; do \
			case $$script in */common.py) continue ;; esac; \
			python $$script || failed="$$failed $$script"; \
		done; \
		if [ -n "$$failed" ]; then echo "benchmarks that failed or missed their goal:$$failed"; exit 1; fi; \
	fi

clean:
	rm -rf $(BUILD) bench-results tests/output
