#!/usr/bin/env bash
# Prove a release tarball works: install it with ansible-galaxy into a scratch collections
# path (nothing else on that path) and run one of its modules from the installed copy.
# Usage: check-build.sh caretaker-ops-X.Y.Z.tar.gz
set -euo pipefail

tarball=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

ansible-galaxy collection install --offline --force -p "$scratch/collections" "$tarball"
installed=$scratch/collections/ansible_collections/caretaker/ops
test -f "$installed/MANIFEST.json"

# A throwaway caretaker host layout with no jobs; the module must report exactly that.
mkdir -p "$scratch/etc/jobs"
printf 'host: buildcheck\nstate_dir: %s\nlog_dir: %s\nmetrics_dir: %s\n' \
    "$scratch/state" "$scratch/log" "$scratch/metrics" >"$scratch/etc/caretaker.yml"
ANSIBLE_COLLECTIONS_PATH="$scratch/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
    ANSIBLE_LOCALHOST_WARNING=false ansible localhost -m caretaker.ops.job_info -a "etc=$scratch/etc" >"$scratch/out"
cat "$scratch/out"
grep -q '"host": "buildcheck"' "$scratch/out"
echo "installed $(basename "$tarball") and ran caretaker.ops.job_info from $installed"
