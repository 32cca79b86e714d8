#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_release
short_description: Prepare, switch, confirm, revert or roll back an application's release on a host
version_added: 0.2.0
description:
  - Releases live in O(root)/releases/RELEASE; O(root)/current is a symlink replaced by renaming a new link over it, so
    readers never see it missing. Shared paths under O(root)/shared are linked into each release.
  - A release is unpacked from a tarball whose sha256 is checked before anything is unpacked, or checked out from a git ref,
    into a hidden directory; the build command runs there; only then is it renamed into place.
  - Every switch is journaled in the host's caretaker ledger with the release it replaced, so O(state=reverted) and
    O(state=rolled_back) pick their target from the journal, never from file times.
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  app:
    description: Application name; the journal and the lock are per application.
    type: str
    required: true
  root:
    description: The application's directory (holding releases/, shared/ and current).
    type: path
    required: true
  state:
    description:
      - V(prepared) makes the release directory complete without switching.
      - V(current) prepares it if needed and points current at it.
      - V(confirmed) marks this host's switch in deploy O(deploy_id) as good and prunes old releases.
      - V(reverted) puts back the release this host had before deploy O(deploy_id) switched it; nothing when it did not.
      - V(rolled_back) switches to the release the journal says the current one replaced (or O(release)).
    type: str
    default: current
    choices: [prepared, current, confirmed, reverted, rolled_back]
  release:
    description: Release name (letters, digits, C(.), C(_), C(+), C(-)).
    type: str
  deploy_id:
    description: Identifies one deploy or rollback across hosts; required except with O(state=prepared).
    type: str
  artifact:
    description: Path on the host of a release tarball.
    type: path
  sha256:
    description: The sha256 O(artifact) must have; checked before anything is unpacked.
    type: str
  strip_components:
    description: Leading path parts removed from the tarball's members.
    type: int
    default: 0
  git_repo:
    description: A git repository to check the release out from, instead of O(artifact).
    type: str
  git_ref:
    description: Branch, tag or commit of O(git_repo).
    type: str
  shared:
    description: Paths inside the release replaced by links to O(root)/shared/PATH (created when missing).
    type: list
    elements: str
    default: []
  build_command:
    description: Argument list run in the new release before it is named (a venv and its requirements, for example).
    type: list
    elements: str
    default: []
  build_env:
    description: Extra environment for O(build_command).
    type: dict
    default: {}
  build_timeout:
    description: Seconds O(build_command) and git may take.
    type: int
    default: 1800
  keep:
    description: Releases kept after a confirmed deploy; never removes the current one or the rollback target.
    type: int
    default: 5
  reason:
    description: Why a revert happened, for the journal.
    type: str
"""

EXAMPLES = r"""
- name: Unpack and build release 2026.11.29 (nothing switches)
  caretaker.ops.deploy_release:
    app: shop
    root: /srv/shop
    state: prepared
    release: "2026.11.29"
    artifact: /srv/shop/.artifacts/shop-2026.11.29.tar.gz
    sha256: "{{ shop_sha256 }}"
    strip_components: 1
    shared: [config, media, log]
    build_command: [/usr/bin/python3, -m, venv, .venv]

- name: Switch to it
  caretaker.ops.deploy_release:
    app: shop
    root: /srv/shop
    release: "2026.11.29"
    deploy_id: "{{ deploy_id }}"
    artifact: /srv/shop/.artifacts/shop-2026.11.29.tar.gz
    sha256: "{{ shop_sha256 }}"
    strip_components: 1
"""

RETURN = r"""
current:
  description: The release current points to after the task.
  returned: always
  type: str
  sample: "2026.11.29"
previous:
  description: The release current pointed to before a switch.
  returned: always
  type: str
  sample: "2026.11.28"
pruned:
  description: Releases removed by O(state=confirmed).
  returned: when state is confirmed
  type: list
  elements: str
build_output:
  description: The last lines of the build command's output.
  returned: when state is prepared or current
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.deploy.releases import DEPLOY_RELEASE
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, DEPLOY_RELEASE)


if __name__ == "__main__":
    main()
