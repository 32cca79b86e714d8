#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_migrate
short_description: Run an application's migrations once, under a PostgreSQL advisory lock, behind a verified backup
version_added: 0.2.0
description:
  - Polls C(pg_try_advisory_lock) until it holds the application's lock (a waiting runner queues no lock request, so it
    cannot deadlock the holder's C(CREATE INDEX CONCURRENTLY)), then asks O(pending_command) whether migrations are
    pending. A second runner that waited finds none and changes nothing.
  - When some are pending, runs O(lint_command), then the backup gate (a caretaker pg_backup of the database, its stored
    bytes checked against the manifest's sha256 and read by C(pg_restore --list)), then O(migrate_command) with
    C(PGOPTIONS) carrying O(lock_timeout) and O(statement_timeout), retried after a lock timeout.
  - The schema version before and after (O(version_command)) and the backup id go into the host's deploy journal.
  - Migrations must be backward compatible with the release still serving (expand, then contract in a later deploy).
requirements:
  - psycopg (3) and zstandard, cryptography, boto3 as the backup gate's store needs, in the caretaker runtime (C(/opt/caretaker/bin/python3))
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.postgres
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
    description: Application name; names the advisory lock unless O(lock_key) is set.
    type: str
    required: true
  deploy_id:
    description: The deploy this migration belongs to.
    type: str
    required: true
  release:
    description: The release whose migrations run.
    type: str
  chdir:
    description: Directory the commands run in (the new release).
    type: path
    required: true
  migrate_command:
    description: Argument list that applies pending migrations (C(alembic upgrade head), C(manage.py migrate)).
    type: list
    elements: str
    required: true
  pending_command:
    description: Argument list that exits 0 when nothing is pending and 1 when migrations are pending.
    type: list
    elements: str
    required: true
  version_command:
    description: Argument list whose last output line is the schema version.
    type: list
    elements: str
    default: []
  lint_command:
    description: Argument list run before the backup gate when migrations are pending; non-zero stops the deploy.
    type: list
    elements: str
    default: []
  environment:
    description: Extra environment for every command.
    type: dict
    default: {}
  lock_key:
    description: The advisory lock's key; default a number derived from O(app).
    type: int
  lock_wait:
    description: Seconds to wait for the advisory lock.
    type: float
    default: 600.0
  poll_interval:
    description: Seconds between two tries of the advisory lock.
    type: float
    default: 1.0
  lock_timeout:
    description: PostgreSQL C(lock_timeout) for the migrate command's sessions.
    type: str
    default: 5s
  statement_timeout:
    description: PostgreSQL C(statement_timeout) for the migrate command's sessions.
    type: str
    default: 15min
  retries:
    description: Times the migrate command is run again after it failed on a lock timeout.
    type: int
    default: 3
  retry_delay:
    description: Seconds before a retry, times the attempt number.
    type: float
    default: 5.0
  command_timeout:
    description: Seconds each command may take.
    type: int
    default: 3600
  backup:
    description: Options of M(caretaker.ops.pg_backup) for the backup gate (database, pg_host, directory or bucket, ...).
    type: dict
  backup_password:
    description: Password for the backup's database connection.
    type: str
  require_backup:
    description: Refuse to migrate without a O(backup) configured.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Alembic migrations of the shop, once, behind a verified backup
  caretaker.ops.deploy_migrate:
    app: shop
    deploy_id: "{{ deploy_id }}"
    chdir: /srv/shop/releases/2026.11.29
    pending_command: [bin/pending]
    version_command: [bin/version]
    migrate_command: [/usr/bin/python3, -m, alembic, upgrade, head]
    environment: {DATABASE_URL: "postgresql://shop@db1/shop"}
    conninfo: "host=db1 dbname=shop user=shop"
    backup: {database: shop, pg_host: db1, pg_user: shop, directory: /var/backups/caretaker}
"""

RETURN = r"""
pending:
  description: Whether migrations were pending when the lock was held.
  returned: always
  type: bool
backup:
  description: The verified backup (id, sha256, size, toc_entries) taken before migrating.
  returned: always
  type: dict
schema_before:
  description: Schema version before.
  returned: always
  type: str
schema_after:
  description: Schema version after.
  returned: always
  type: str
attempts:
  description: Runs of the migrate command.
  returned: always
  type: int
waited:
  description: Seconds spent waiting for the advisory lock.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.deploy.migrate import DEPLOY_MIGRATE
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, DEPLOY_MIGRATE)


if __name__ == "__main__":
    main()
