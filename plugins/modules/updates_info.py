#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: updates_info
short_description: Report pending Debian package updates and whether a reboot is required
version_added: 0.1.0
description:
  - Lists the installed packages that have a newer candidate version, marking those offered by a
    security archive (an apt origin labelled C(*Security*) or an archive ending in C(-security)).
  - Reads apt's own simulation (C(apt-get --simulate dist-upgrade)) rather than python3-apt, because
    caretaker's engine runs in a virtualenv that does not see the system's Python packages.
  - Reports whether C(/var/run/reboot-required) exists, since when, and which packages asked for it.
  - The same report is the C(updates_info) job kind of C(caretaker run), for health checks.
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  update_cache:
    description:
      - Run C(apt-get update) first so the report reflects the mirrors now, not the last cache refresh.
    type: bool
    default: false
  reboot_required_file:
    description: The flag file Debian's packages create when a reboot is needed.
    type: path
    default: /var/run/reboot-required
notes:
  - Packages put on hold with C(apt-mark hold) are not reported, as apt would not upgrade them.
"""

EXAMPLES = r"""
- name: Read pending updates after refreshing the package lists
  caretaker.ops.updates_info:
    update_cache: true
  register: caretaker_updates

- name: Fail a health check when security updates wait or a reboot is overdue
  ansible.builtin.assert:
    that:
      - caretaker_updates.security_count == 0
      - not caretaker_updates.reboot_required
    fail_msg: >-
      {{ caretaker_updates.security_count }} security updates pending;
      reboot required since {{ caretaker_updates.reboot_required_since }}
"""

RETURN = r"""
status:
  description: As a check, C(warning) when security updates are pending or a reboot is required, else C(ok).
  returned: always
  type: str
  sample: warning
summary:
  description: The check's one-line summary.
  returned: always
  type: str
  sample: "security updates: 2 pending"
findings:
  description: The check's findings (security updates, other updates, reboot), each with C(name), C(status), C(message), C(value).
  returned: always
  type: list
  elements: dict
updates:
  description: One entry per installed package with a newer candidate, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Package name.
      type: str
    current:
      description: Installed version.
      type: str
    candidate:
      description: Version apt would install.
      type: str
    arch:
      description: Architecture.
      type: str
    origins:
      description: Where the candidate comes from, as apt prints it (C(Label:Version/Archive)).
      type: list
      elements: str
    security:
      description: Whether one of the origins is a security archive.
      type: bool
  sample:
    - name: openssl
      current: 3.0.15-1~deb12u1
      candidate: 3.0.17-1~deb12u2
      arch: amd64
      origins: ["Debian:12.11/stable", "Debian-Security:12/stable-security"]
      security: true
pending_count:
  description: Number of pending updates.
  returned: always
  type: int
  sample: 3
security_count:
  description: Number of pending updates that come from a security archive.
  returned: always
  type: int
  sample: 1
reboot_required:
  description: Whether the reboot-required flag file exists.
  returned: always
  type: bool
  sample: true
reboot_required_since:
  description: When the flag file was written (ISO 8601, UTC), or null.
  returned: always
  type: str
  sample: "2026-11-23T03:12:44+00:00"
reboot_required_packages:
  description: The packages listed in the flag file's C(.pkgs) companion.
  returned: always
  type: list
  elements: str
  sample: [linux-image-6.1.0-28-amd64]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.checks.updates_info import UPDATES_INFO
from ansible_collections.caretaker.ops.plugins.module_utils.foundation.config import Settings
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    # Needs nothing from /etc/caretaker, so it runs (without PyYAML) on hosts with or without caretaker.
    run_as_module(AnsibleModule, UPDATES_INFO, settings=Settings())


if __name__ == "__main__":
    main()
