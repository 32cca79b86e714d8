# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The PostgreSQL client programs the backup modules run (connection options: caretaker.ops.postgres).
    CLIENT = r"""
options:
  pg_bin_dir:
    description:
      - Directory of C(pg_dump) and C(pg_restore).
      - By default C(/usr/lib/postgresql/<server major version>/bin) when it exists, so the client matches the server, else the C(PATH).
    type: path
"""

    # Where backups are stored.
    STORE = r"""
options:
  destination:
    description: Store backups in a local directory or an S3 (or S3-compatible) bucket.
    type: str
    choices: [local, s3]
    default: local
  directory:
    description: The local directory for O(destination=local).
    type: path
    default: /var/backups/caretaker
  prefix:
    description: Key prefix (folder) under which each database gets its own folder.
    type: str
    default: ""
  bucket:
    description: The bucket for O(destination=s3).
    type: str
  endpoint_url:
    description: The S3 endpoint of an S3-compatible store (MinIO, Ceph, R2...); AWS when unset.
    type: str
  region:
    description: The bucket's region.
    type: str
  storage_class:
    description: S3 storage class of the stored backups, for example C(STANDARD_IA).
    type: str
  sse:
    description: S3 server-side encryption.
    type: str
    choices: [AES256, "aws:kms", "aws:kms:dsse"]
  sse_kms_key_id:
    description: The KMS key for O(sse=aws:kms).
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
    description:
      - Size of each multipart upload part in MiB (5 to 5120); all parts but the last have this size.
      - Memory use is about three parts; the default allows objects up to 78 GiB (10,000 parts).
    type: int
    default: 8
  max_attempts:
    description: Attempts of each S3 request (500, 503 SlowDown, resets and timeouts are retried).
    type: int
    default: 5
  read_timeout:
    description:
      - Seconds to wait for an S3 response.
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
    default: 1m
"""

    # The retention policy.
    RETENTION = r"""
options:
  keep_last:
    description: Keep the newest this many backups.
    type: int
    default: 7
  keep_daily:
    description: Keep the newest backup of each of the last this many days that have backups.
    type: int
    default: 7
  keep_weekly:
    description: Keep the newest backup of each of the last this many ISO weeks that have backups.
    type: int
    default: 4
  keep_monthly:
    description: Keep the newest backup of each of the last this many months that have backups.
    type: int
    default: 6
  keep_yearly:
    description: Keep the newest backup of each of the last this many years that have backups.
    type: int
    default: 0
  max_age:
    description:
      - The tiers keep nothing older than this (at least V(1d)).
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
  max_age_days:
    description: Deprecated, use O(max_age). The same in days.
    type: float
  min_keep:
    description:
      - Never keep fewer backups than this.
      - The newest backup and the newest backup that passed a restore drill are always kept, whatever the policy.
    type: int
    default: 1
  stale_upload:
    description:
      - Incomplete uploads and data without a manifest older than this are removed.
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
    default: 1d
  stale_upload_hours:
    description: Deprecated, use O(stale_upload). The same in hours.
    type: float
"""
