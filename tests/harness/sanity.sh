#!/usr/bin/env bash
# ansible-test sanity, with no ignore files, on a copy of the files git knows about.
# ansible-test wants the collection at .../ansible_collections/caretaker/ops inside its own
# git tree, and it bootstraps pip in its sanity virtualenvs from a host we cannot reach, so
# this script provides that bootstrap from PyPI first (see offline_get_pip.py).
# Usage: sanity.sh [ansible-test sanity options...]
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/tests/harness
tree=$repo/.build/sanity/ansible_collections/caretaker/ops

pip_version=$(python -c 'import types; from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"])')
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
if ! ls "$cache"/pip-"$pip_version"-*.whl >/dev/null 2>&1; then
    python -m pip download --quiet --disable-pip-version-check --no-deps --dest "$cache" "pip==$pip_version"
fi
cp "$here/offline_get_pip.py" "$cache/get_pip_${pip_version//./_}.py"

rm -rf "$repo/.build/sanity"
mkdir -p "$tree"
git -C "$repo" ls-files -z --cached --others --exclude-standard |
    (cd "$repo" && tar --null -T - --ignore-failed-read -c 2>/dev/null) | tar -x -C "$tree"
git -C "$tree" init --quiet

cd "$tree"
ansible-test sanity --python 3.11 --requirements --color no "$@"
