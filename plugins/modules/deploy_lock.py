#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take or release an application's deploy lock; journal and announce the deploy's end
version_added: 0.2.0
description:
  - O(state=present) takes the lock in the host's caretaker ledger, recording who, from which controller, which release
    and when. While another deploy holds it, the module fails (exit 73 on the CLI) with the holder's details.
  - A lock older than O(ttl) is broken only with O(break_lock=true), and the result says whose lock was broken.
  - O(state=absent) journals the deploy's outcome, drops the lock if this deploy holds it and, when O(outcome) is not
    V(ok), alerts through the host's caretaker alert routes.
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
    description: Application name.
    type: str
    required: true
  deploy_id:
    description: This deploy's identifier; taking the lock again with the same one changes nothing.
    type: str
    required: true
  state:
    description: V(present) takes the lock, V(absent) ends the deploy.
    type: str
    default: present
    choices: [present, absent]
  holder:
    description: Who deploys (a user name).
    type: str
    default: unknown
  controller:
    description: Where the deploy runs from (the controller's host name, a CI job).
    type: str
    default: unknown
  release:
    description: The release being deployed.
    type: str
  ttl:
    description: Seconds after which the lock may be broken with O(break_lock).
    type: int
    default: 3600
  break_lock:
    description: Break a lock older than its O(ttl).
    type: bool
    default: false
  outcome:
    description: With O(state=absent), how the deploy ended.
    type: str
    default: ok
    choices: [ok, failed, rolled_back]
  reason:
    description: With O(state=absent), why it ended so.
    type: str
  alert_routes:
    description: Alert routes (from the host's caretaker.yml) for a failed deploy; default the host's default routes.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Lock the shop's deploys
  caretaker.ops.deploy_lock:
    app: shop
    deploy_id: "{{ deploy_id }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}"
    controller: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    release: "2026.11.29"

- name: End a failed deploy and alert
  caretaker.ops.deploy_lock:
    app: shop
    deploy_id: "{{ deploy_id }}"
    state: absent
    outcome: rolled_back
    reason: the canary failed its health gate
"""

RETURN = r"""
lock:
  description: The lock held after O(state=present).
  returned: when state is present
  type: dict
broken:
  description: The expired lock this task broke, or null.
  returned: always
  type: dict
alerted:
  description: Whether an alert went out for a failed deploy.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.deploy.lock import DEPLOY_LOCK
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, DEPLOY_LOCK)


if __name__ == "__main__":
    main()
