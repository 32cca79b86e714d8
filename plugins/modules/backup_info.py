#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: List a database's backups with their manifests and restore drill results
version_added: 0.1.0
description:
  - Reads the manifests and drill results that M(caretaker.ops.pg_backup) and the C(pg_restore_drill) job kind store.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
  - caretaker.ops.pg_backup.STORE
options:
  database:
    description: The database whose backups to list.
    type: str
    required: true
  backup:
    description: Report only this backup id (or V(latest)).
    type: str
"""

EXAMPLES = r"""
- name: Fail when the newest verified backup is missing
  caretaker.ops.backup_info:
    database: app
    destination: s3
    bucket: acme-backups
    prefix: db1
  register: caretaker_backups
  failed_when: caretaker_backups.latest_verified is none
"""

RETURN = r"""
database:
  description: The database.
  returned: always
  type: str
location:
  description: The folder of its backups.
  returned: always
  type: str
  sample: s3://acme-backups/db1/app/
backups:
  description: Each backup, oldest first, with its manifest and last drill result (or null).
  returned: always
  type: list
  elements: dict
latest:
  description: Id of the newest backup, or null.
  returned: always
  type: str
latest_verified:
  description: Id of the newest backup that passed a restore drill, or null.
  returned: always
  type: str
pending:
  description: Data keys of backup runs under way, or killed and not yet cleaned (the next backup or prune removes them).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.backup.pg_backup import BACKUP_INFO
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    module = AnsibleModule(argument_spec=BACKUP_INFO.argument_spec, supports_check_mode=True)
    run_as_module(module, BACKUP_INFO)


if __name__ == "__main__":
    main()
