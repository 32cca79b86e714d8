#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_info
short_description: An application's current and previous release and its deploy history
version_added: 0.2.0
description:
  - Reads O(root)/current and the deploy journal in the host's caretaker ledger. RV(previous) is the release a rollback
    would return to, from the journal.
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  app:
    description: Application name.
    type: str
    required: true
  root:
    description: The application's directory.
    type: path
    required: true
  history:
    description: Journal rows returned, newest first.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Where is the shop?
  caretaker.ops.deploy_info:
    app: shop
    root: /srv/shop
  register: shop
"""

RETURN = r"""
current:
  description: The release current points to, or null.
  returned: always
  type: str
  sample: v2
previous:
  description: The release a rollback returns to, or null.
  returned: always
  type: str
  sample: v1
releases:
  description: Releases on the host, oldest first.
  returned: always
  type: list
  elements: str
lock:
  description: The deploy lock held on this host, or null.
  returned: always
  type: dict
history:
  description: Journal rows (deploy_id, action, release, previous, started, ended, outcome, schema versions, backup id).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.deploy.info import DEPLOY_INFO
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, DEPLOY_INFO)


if __name__ == "__main__":
    main()
