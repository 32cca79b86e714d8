#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_purge
short_description: Delete (and optionally archive) PostgreSQL rows older than a cutoff, in short batches
version_added: 0.1.0
description:
  - Deletes the rows of each table whose time column is older than a cutoff, in batches of at
    most O(tables[].batch_size) rows sized to take about O(tables[].batch_seconds), each batch
    its own short transaction with C(lock_timeout) and C(statement_timeout), so vacuum,
    replicas and other writers keep going.
  - Each batch finds its last row in cursor order and deletes the range up to it through the
    time column's index, the way a single C(DELETE) would. The purge's session commits with
    C(synchronous_commit=off), so a crash may lose the last batches' deletes; a later run
    deletes those rows again.
  - Batches follow the time column's index in (time column, primary key) order, or
    (time column, C(ctid)) when the table has no primary key, from a keyset cursor kept in the
    host's caretaker ledger. A run stopped by its O(tables[].budget) continues from the cursor,
    with the same cutoff, next time.
  - With O(tables[].archive), each batch's rows are copied out as they are deleted
    (C(COPY (DELETE ... RETURNING *))), compressed with zstd and stored, in an S3 (or
    S3-compatible) bucket or a local directory named by O(archive), or the directory
    O(archive_dir); the delete commits only once the archive is stored whole. If archiving
    fails, nothing of that batch is deleted and the run stops. The bucket or directory is
    checked before the first row is deleted.
  - Every table, column, filter and cutoff is checked before the first row is deleted.
  - The login in O(conninfo) needs SELECT and DELETE on each table, nothing more.
  - The same task runs on the host as the C(pg_purge) job kind of C(caretaker run).
  - Needs psycopg 3 and, for archives, zstandard (and boto3 for S3) on the host.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
attributes:
  check_mode:
    support: full
    details: Counts the rows each table would lose and deletes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds nothing older than the cutoff, unless rows aged past it in between.
options:
  conninfo:
    description:
      - libpq connection string or URI of the database, for example C(dbname=app host=/run/postgresql).
      - Empty uses libpq's defaults and C(PG*) environment variables.
    type: str
    default: ""
  tables:
    description: The tables to purge, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Table name (not quoted; any characters).
        type: str
        required: true
      schema:
        description: Schema of the table.
        type: str
        default: public
      time_column:
        description: Column of type C(timestamp), C(timestamptz) or C(date) that says how old a row is.
        type: str
        required: true
      older_than:
        description:
          - Rows with O(tables[].time_column) before the cutoff go.
          - An age before now (C(90s), C(30m), C(12h), C(7d), C(2w)) or an ISO 8601 timestamp
            (UTC when it has no zone). A cutoff in the future is refused.
        type: str
        required: true
      where:
        description: Further conditions a row must meet to go, all of them (AND).
        type: list
        elements: dict
        default: []
        suboptions:
          column:
            description: Column to test.
            type: str
            required: true
          op:
            description: C(in) and C(not_in) take a list; C(is_null) and C(is_not_null) take no value.
            type: str
            default: "="
            choices: ["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "like", "not_like", "is_null", "is_not_null"]
          value:
            description: The value (or list of values), passed to PostgreSQL as a parameter, never as SQL.
            type: raw
      batch_size:
        description:
          - Most rows per batch. Batches start at 1000 rows (or this, if smaller) and grow or shrink
            towards O(tables[].batch_seconds) per batch, never above this.
        type: int
        default: 50000
      batch_seconds:
        description:
          - Target duration of one batch, in seconds; the batch size adapts to it, so the time any
            row lock is held stays near it whatever the rows cost to delete.
          - C(0) keeps every batch at O(tables[].batch_size) rows.
        type: float
        default: 0.5
      pause:
        description: Seconds to sleep between batches, to give replicas or a busy disk room.
        type: float
        default: 0.0
      budget:
        description: Seconds this table may take in one run; the next run continues from the cursor.
        type: float
        default: 900.0
      lock_timeout:
        description: Seconds a batch waits for a row lock before the run stops (to be retried).
        type: float
        default: 2.0
      statement_timeout:
        description: Seconds a batch's statement may run.
        type: float
        default: 30.0
      archive:
        description: Archive each batch to O(archive) (or O(archive_dir)) before deleting it.
        type: bool
        default: false
      missing_index:
        description:
          - What to do when no index starts with O(tables[].time_column), so every batch would scan
            the table. C(fail) refuses and names the C(CREATE INDEX) statement to run; C(warn) goes on.
        type: str
        default: fail
        choices: [fail, warn]
  archive:
    description:
      - Where archives go, with the options of the backup store (M(caretaker.ops.pg_backup)).
        Each batch becomes one zstd-compressed CSV (with a header line) at
        C(PREFIX/SCHEMA.TABLE/STAMP-RUN-BATCH.csv.zst), visible only once whole (an S3 multipart
        upload completed, or a synced file renamed into place).
      - Mutually exclusive with O(archive_dir).
    type: dict
    suboptions:
      destination:
        description: An S3 (or S3-compatible) bucket or a local directory.
        type: str
        choices: [local, s3]
        default: local
      directory:
        description: The directory for O(archive.destination=local); required then.
        type: path
      prefix:
        description: Key prefix (folder) the archives go under.
        type: str
        default: ""
      bucket:
        description: The bucket for O(archive.destination=s3); it must exist.
        type: str
      endpoint_url:
        description: The endpoint of an S3-compatible store (MinIO, Ceph, R2...); AWS when unset.
        type: str
      region:
        description: The bucket's region.
        type: str
      storage_class:
        description: S3 storage class of the archives, for example C(GLACIER_IR).
        type: str
      sse:
        description: S3 server-side encryption.
        type: str
        choices: [AES256, "aws:kms", "aws:kms:dsse"]
      sse_kms_key_id:
        description: The KMS key for O(archive.sse=aws:kms).
        type: str
      access_key:
        description: S3 access key; the boto3 credential chain (environment, instance role, shared files) when unset.
        type: str
      secret_key:
        description: S3 secret key.
        type: str
      session_token:
        description: S3 session token for temporary credentials.
        type: str
      addressing_style:
        description: S3 addressing style; C(path) for most S3-compatible stores.
        type: str
        choices: [auto, path, virtual]
        default: auto
      part_size_mb:
        description: Size of each multipart upload part in MiB (5 to 5120).
        type: int
        default: 8
      max_attempts:
        description: Attempts of each S3 request (500, 503 SlowDown, resets and timeouts are retried).
        type: int
        default: 5
      read_timeout:
        description: Seconds to wait for an S3 response.
        type: float
        default: 60.0
  archive_dir:
    description:
      - The simple form of O(archive) for a local directory, the same as O(archive.destination=local)
        with O(archive.directory) set to this.
    type: path
  archive_level:
    description: zstd compression level of archives.
    type: int
    default: 3
"""

EXAMPLES = r"""
- name: Purge sessions older than 30 days and archive debug events older than a week
  caretaker.ops.pg_purge:
    conninfo: dbname=app host=/run/postgresql user=postgres
    archive_dir: /var/backups/purged
    tables:
      - name: sessions
        time_column: last_seen
        older_than: 30d
      - name: events
        time_column: created_at
        older_than: 7d
        where:
          - column: level
            op: in
            value: [debug, trace]
        archive: true
        batch_size: 2000
        budget: 300

- name: Archive audit rows older than 90 days to S3 before deleting them
  caretaker.ops.pg_purge:
    conninfo: dbname=app host=/run/postgresql user=postgres
    archive:
      destination: s3
      bucket: acme-db-archive
      prefix: app/purged
      region: eu-west-1
      access_key: "{{ vault_archive_access_key }}"
      secret_key: "{{ vault_archive_secret_key }}"
    tables:
      - name: audit_log
        time_column: at
        older_than: 90d
        archive: true

- name: Count what would go
  caretaker.ops.pg_purge:
    conninfo: dbname=app
    tables:
      - name: sessions
        time_column: last_seen
        older_than: "2026-01-01T00:00:00Z"
  check_mode: true
  register: caretaker_purge_preview
"""

RETURN = r"""
rows_deleted:
  description: Rows deleted in this run, all tables.
  returned: success, not in check mode
  type: int
  sample: 120000
rows_archived:
  description: Rows archived before they were deleted.
  returned: success, not in check mode
  type: int
  sample: 120000
batches:
  description: Batches (transactions) committed.
  returned: success, not in check mode
  type: int
  sample: 24
seconds:
  description: Time the purge took.
  returned: success, not in check mode
  type: float
  sample: 12.4
longest_batch_seconds:
  description: Duration of the longest batch, the longest any row lock was held.
  returned: success, not in check mode
  type: float
  sample: 0.21
budget_stopped:
  description: Whether a table's runtime budget ended the run before it was done; the next run continues.
  returned: success, not in check mode
  type: bool
  sample: false
would_delete:
  description: Rows that would be deleted, all tables.
  returned: check mode
  type: int
  sample: 120000
tables:
  description: Per table, the same figures (or C(would_delete) in check mode), the cutoff used and whether the run resumed a cursor.
  returned: success
  type: list
  elements: dict
  sample:
    - table: public.events
      cutoff: "2026-11-16T03:00:00+00:00"
      resumed: false
      rows_deleted: 120000
      rows_archived: 120000
      batches: 24
      seconds: 12.4
      budget_stopped: false
warnings:
  description: Tables purged without an index on the time column, with the index to create.
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.data.pg_purge import PG_PURGE
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    module = AnsibleModule(argument_spec=PG_PURGE.argument_spec, supports_check_mode=True)
    run_as_module(module, PG_PURGE)


if __name__ == "__main__":
    main()
