#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Back up a PostgreSQL database to S3 or a directory, compressed, encrypted, with a manifest
version_added: 0.1.0
description:
  - Streams C(pg_dump --format=custom --compress=0) through zstd and, when O(recipients) are set, age encryption
    to X25519 public keys, into an S3 bucket (multipart upload) or a local directory. No temporary file is written.
  - Each backup is one object, C(PREFIX/DATABASE/ID.dump.zst[.age]). Its manifest (sha256 of the stored bytes,
    per-table row counts taken in the same snapshot as the dump, versions, times) is added last to the folder's
    C(catalog.json), with a conditional write. A backup without a manifest does not exist. A failed run leaves
    none and aborts its upload. A killed run is named pending in the catalog, and the next run removes what it left.
  - Prunes the database's backups after a successful backup when O(prune=true).
  - The same engine runs as the C(pg_backup) job kind of C(caretaker run).
  - Needs the Python packages psycopg, zstandard, cryptography, and boto3 for S3, on the host.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
  - caretaker.ops.pg_backup.POSTGRES
  - caretaker.ops.pg_backup.STORE
  - caretaker.ops.pg_backup.RETENTION
attributes:
  check_mode:
    support: full
    details: Checks the input, the store and the database connection, and reports the backup it would take.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run takes a new backup.
options:
  database:
    description: The database to back up.
    type: str
    required: true
  recipients:
    description:
      - age X25519 public keys (C(age1...)) to encrypt the backup to. The host needs only these public keys.
      - Decrypt with C(age -d -i KEYFILE), or restore with M(caretaker.ops.pg_restore) and O(caretaker.ops.pg_restore#module:identity_file).
    type: list
    elements: str
    default: []
  compression_level:
    description: zstd level, 1 to 22.
    type: int
    default: 3
  compression_threads:
    description:
      - zstd worker threads; C(0) compresses in the backup's own thread, C(-1) starts one per CPU.
      - Workers compress 2 MiB jobs and hold a few MiB each. Two keep up with pg_dump, and on a small host they
        leave the backup's own thread free to read, encrypt and upload.
    type: int
    default: 2
  prune:
    description: Apply the retention policy after a successful backup.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Back up the app database to S3, encrypted to the operators' key
  caretaker.ops.pg_backup:
    database: app
    pg_user: postgres
    destination: s3
    bucket: acme-backups
    prefix: "{{ inventory_hostname }}"
    region: eu-west-1
    storage_class: STANDARD_IA
    recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    keep_daily: 14

- name: Back up to a local directory without pruning
  caretaker.ops.pg_backup:
    database: app
    directory: /srv/backups
    prune: false
"""

RETURN = r"""
backup_id:
  description: The new backup's id (UTC start time to the millisecond and a random suffix).
  returned: success, not in check mode
  type: str
  sample: 20261123T031700123Z-3fa9c1
key:
  description: Key or path of the stored bytes under the store.
  returned: success, not in check mode
  type: str
  sample: db1/app/20261123T031700123Z-3fa9c1.dump.zst.age
size:
  description: Bytes stored.
  returned: success, not in check mode
  type: int
sha256:
  description: sha256 of the stored bytes, as in the manifest.
  returned: success, not in check mode
  type: str
tables:
  description: Number of tables whose row counts the manifest records.
  returned: success, not in check mode
  type: int
seconds:
  description: Wall time of the dump and upload.
  returned: success, not in check mode
  type: float
abandoned_runs_removed:
  description: Earlier runs that were killed before they finished, whose incomplete uploads and data this run removed.
  returned: success, not in check mode
  type: int
prune:
  description: The retention result, as M(caretaker.ops.backup_prune) returns it.
  returned: when O(prune=true), not in check mode
  type: dict
destination:
  description: Where the backup goes.
  returned: check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.backup.pg_backup import PG_BACKUP
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    module = AnsibleModule(argument_spec=PG_BACKUP.argument_spec, supports_check_mode=True)
    run_as_module(module, PG_BACKUP)


if __name__ == "__main__":
    main()
