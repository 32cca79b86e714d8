#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a PostgreSQL backup taken by caretaker.ops.pg_backup, after verifying it
version_added: 0.1.0
description:
  - Restores the latest or a chosen backup into a new database, or cleans and replaces an existing one only with O(replace=true).
  - Before anything touches the target, the stored bytes are checked against the manifest's size and sha256 and
    the identity must open the age header; a damaged backup or a wrong key fails with the target untouched.
  - Runs C(pg_restore --exit-on-error); any error fails the task and drops the half-restored database.
  - A replacement is restored under a temporary name and renamed over the target only when complete.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
  - caretaker.ops.pg_backup.POSTGRES
  - caretaker.ops.pg_backup.STORE
attributes:
  check_mode:
    support: full
    details: Resolves the backup, reads the identity and reports whether the target would be replaced.
  diff_mode:
    support: none
  idempotent:
    support: none
options:
  database:
    description: The database whose backups to restore from.
    type: str
    required: true
  backup:
    description: A backup id, or V(latest).
    type: str
    default: latest
  target:
    description: The database to restore into.
    type: str
    required: true
  replace:
    description: Replace O(target) if it exists. Without it, an existing target is an error.
    type: bool
    default: false
  identity_file:
    description: An age identity file (C(AGE-SECRET-KEY-1...)) for encrypted backups. Keep it off the backed-up hosts.
    type: path
  no_owner:
    description: Pass C(--no-owner) to pg_restore, for targets where the original roles do not exist.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Restore last night's backup of app into app_yesterday
  caretaker.ops.pg_restore:
    database: app
    target: app_yesterday
    destination: s3
    bucket: acme-backups
    prefix: db1
    identity_file: /root/restore.key

- name: Replace app with a chosen backup
  caretaker.ops.pg_restore:
    database: app
    target: app
    replace: true
    backup: 20261123T031700123Z-3fa9c1
    directory: /srv/backups
"""

RETURN = r"""
backup_id:
  description: The backup restored.
  returned: always
  type: str
target:
  description: The database restored into.
  returned: always
  type: str
replaced:
  description: Whether an existing target was replaced.
  returned: always
  type: bool
seconds:
  description: Wall time of the verification and restore.
  returned: success, not in check mode
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.backup.pg_backup import PG_RESTORE
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    module = AnsibleModule(argument_spec=PG_RESTORE.argument_spec, supports_check_mode=True)
    run_as_module(module, PG_RESTORE)


if __name__ == "__main__":
    main()
