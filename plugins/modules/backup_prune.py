#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_prune
short_description: Apply a retention policy to a database's backups
version_added: 0.1.0
description:
  - Keeps backups by O(keep_last) and daily, weekly, monthly and yearly tiers, bounded by O(max_age_days).
  - Never deletes the newest backup, nor the newest backup that passed a restore drill, never keeps fewer than
    O(min_keep), and never touches a key outside the database's folder under O(prefix).
  - Takes the deleted backups out of the folder's catalog first (a backup stops existing before its bytes go), then
    deletes their data in batches of 1,000 keys per request. Pruning 10,000 backups in S3 takes 12 requests.
  - Runs still named pending in the catalog after O(stale_upload_hours) (killed, and not followed by another backup)
    are abandoned, their incomplete uploads aborted and their data removed.
  - In check mode returns the exact plan.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
  - caretaker.ops.pg_backup.STORE
  - caretaker.ops.pg_backup.RETENTION
attributes:
  check_mode:
    support: full
    details: Returns the same plan a real run carries out.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  database:
    description: The database whose backups to prune.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show what a stricter policy would delete
  caretaker.ops.backup_prune:
    database: app
    directory: /srv/backups
    keep_last: 3
    keep_daily: 7
    keep_monthly: 12
  check_mode: true
  register: caretaker_plan
"""

RETURN = r"""
keep:
  description: Backup ids kept, each with the rules that keep it.
  returned: always
  type: dict
  sample: {"20261123T031700123Z-3fa9c1": ["keep_last", "newest"]}
delete:
  description: Backup ids deleted (or to delete in check mode), oldest first.
  returned: always
  type: list
  elements: str
abandoned:
  description: Data keys of runs that never finished, older than O(stale_upload_hours); their uploads are aborted and data removed.
  returned: always
  type: list
  elements: str
requests:
  description: Store requests the whole prune took (S3 requests including retries, or files removed).
  returned: not in check mode
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.backup.pg_backup import BACKUP_PRUNE
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    module = AnsibleModule(argument_spec=BACKUP_PRUNE.argument_spec, supports_check_mode=True)
    run_as_module(module, BACKUP_PRUNE)


if __name__ == "__main__":
    main()
