"""Backups against a real PostgreSQL 15 and moto's S3 server: round trips and the age tool."""

import base64
import subprocess
import zlib

import pytest
import zstandard
from backup_helpers import backup, local_catalog, restore, run_task, s3_catalog, table_fingerprint
from caretaker.backup import pg_backup
from caretaker.foundation.errors import CaretakerError, ConfigError
from caretaker.lib import age


@pytest.fixture
def keypair(tmp_path):
    identity, recipient = age.generate_identity()
    path = tmp_path / "backup.key"
    path.write_text(f"# created for a test\n{identity}\n")
    path.chmod(0o600)
    return path, recipient


@pytest.mark.parametrize("threads", [0, 2])
def test_local_backup_restores_the_same_rows(postgres, pg_database, tmp_path, threads):
    store = {"directory": str(tmp_path / "backups")}
    result = backup(postgres.args(pg_database, compression_threads=threads, **store))
    assert result["changed"] and result["tables"] == 3
    folder = tmp_path / "backups" / pg_database
    catalog = local_catalog(folder)
    assert catalog["pending"] == {} and list(catalog["backups"]) == [result["backup_id"]]
    manifest = catalog["backups"][result["backup_id"]]
    assert manifest["tables"] == {"billing.Invoices": 7000, "public.empty_table": 0, "public.users": 3000}
    assert manifest["size"] == (folder / f"{result['backup_id']}.dump.zst").stat().st_size
    assert manifest["server_version"] // 10000 == 15 and manifest["encryption"] is None
    assert manifest["compression"] == {"algorithm": "zstd", "level": 3, "threads": threads}
    assert sorted(path.name for path in folder.iterdir()) == [".catalog.json.lock", f"{result['backup_id']}.dump.zst", "catalog.json"]

    target = pg_database + "_copy"
    restored = restore(postgres.args(pg_database, target=target, **store))
    assert restored["backup_id"] == result["backup_id"] and not restored["replaced"]
    assert table_fingerprint(postgres, target) == table_fingerprint(postgres, pg_database)


def test_s3_encrypted_backup_decrypts_with_the_age_tool(postgres, pg_database, s3, keypair, tmp_path):
    identity_file, recipient = keypair
    bucket = s3.create_bucket()
    params = postgres.args(pg_database, recipients=[recipient], storage_class="STANDARD_IA", sse="AES256", prefix="nightly",
                           **s3.args(bucket))
    result = backup(params)
    key = result["key"]
    assert key == f"nightly/{pg_database}/{result['backup_id']}.dump.zst.age"
    stored = s3.client().get_object(Bucket=bucket, Key=key)
    assert stored["StorageClass"] == "STANDARD_IA" and stored["ServerSideEncryption"] == "AES256"
    decrypted = subprocess.run(["age", "--decrypt", "-i", str(identity_file)], input=stored["Body"].read(), capture_output=True, check=True).stdout
    dump = zstandard.ZstdDecompressor().decompressobj().decompress(decrypted)
    assert dump.startswith(b"PGDMP")
    listing = subprocess.run(["pg_restore", "--list"], input=dump, capture_output=True, check=True).stdout.decode()
    assert "TABLE DATA public users" in listing and "TABLE DATA billing Invoices" in listing
    manifest = s3_catalog(s3.client(), bucket, f"nightly/{pg_database}/")["backups"][result["backup_id"]]
    assert manifest["encryption"] == {"format": "age", "recipients": [recipient]}
    assert s3.uploads(bucket) == []

    target = pg_database + "_from_s3"
    restore({**params, "target": target, "identity_file": str(identity_file)})
    assert table_fingerprint(postgres, target) == table_fingerprint(postgres, pg_database)


def test_parts_are_equal_sized_and_checked_by_crc32(postgres, s3, tmp_path):
    database = postgres.create_database()
    with postgres.connect(database) as conn:
        # random bytes do not compress: about 12 MiB stored, so three parts of 5 MiB
        conn.execute("CREATE TABLE blobs AS SELECT g AS id, decode(string_agg(md5(random()::text), ''), 'hex') AS data"
                     " FROM generate_series(1, 24000) g, generate_series(1, 32) r GROUP BY g")
    bucket = s3.create_bucket()
    result = backup(postgres.args(database, **s3.args(bucket)))
    parts = [path for method, path in s3.proxy.requests if method == "PUT" and "partNumber=" in path]
    assert len(parts) >= 2
    head = s3.client().head_object(Bucket=bucket, Key=result["key"], PartNumber=1)
    assert head["ContentLength"] == 5 * 1024 * 1024 and head["PartsCount"] == len(parts)
    # The store verified each part's CRC32 and keeps the composite: the CRC32 of the parts' CRC32s.
    stored = s3.client().get_object(Bucket=bucket, Key=result["key"])["Body"].read()
    part_crcs = b"".join(zlib.crc32(stored[start : start + 5 * 1024 * 1024]).to_bytes(4, "big") for start in range(0, len(stored), 5 * 1024 * 1024))
    composite = base64.b64encode(zlib.crc32(part_crcs).to_bytes(4, "big")).decode()
    checksum = s3.client().head_object(Bucket=bucket, Key=result["key"], ChecksumMode="ENABLED")["ChecksumCRC32"]
    assert checksum.split("-")[0] == composite  # S3 adds "-<parts>"; moto does not


def test_restore_refuses_an_existing_target_unless_replace(postgres, pg_database, tmp_path):
    store = {"directory": str(tmp_path / "b")}
    backup(postgres.args(pg_database, **store))
    other = postgres.create_database()
    with postgres.connect(other) as conn:
        conn.execute("CREATE TABLE keepme (x int)")
    with pytest.raises(ConfigError, match="exists"):
        restore(postgres.args(pg_database, target=other, **store))
    with postgres.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM keepme").fetchone()[0] == 0
    planned = restore(postgres.args(pg_database, target=other, replace=True, **store), check_mode=True)
    assert planned["replaced"] is True
    with postgres.connect(other) as conn:
        assert conn.execute("SELECT to_regclass('keepme')").fetchone()[0] == "keepme"
    restore(postgres.args(pg_database, target=other, replace=True, **store))
    assert table_fingerprint(postgres, other) == table_fingerprint(postgres, pg_database)
    with postgres.connect(other) as conn:
        assert conn.execute("SELECT to_regclass('keepme')").fetchone()[0] is None


def test_flipped_byte_is_refused_before_the_target_is_touched(postgres, pg_database, s3, keypair):
    identity_file, recipient = keypair
    bucket = s3.create_bucket()
    params = postgres.args(pg_database, recipients=[recipient], **s3.args(bucket))
    result = backup(params)
    client = s3.client()
    data = bytearray(client.get_object(Bucket=bucket, Key=result["key"])["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=result["key"], Body=bytes(data))
    before = postgres.databases()
    with pytest.raises(CaretakerError, match="damaged"):
        restore({**params, "target": pg_database + "_x", "identity_file": str(identity_file)})
    assert postgres.databases() == before
    # the drill checks as it restores into its own scratch database: it fails, says why, drops the scratch
    drill_params = {key: value for key, value in params.items() if key in pg_backup.DRILL_SPEC}
    with pytest.raises(CaretakerError, match=f"backup {result['backup_id']} is damaged") as failed:
        run_task(pg_backup.PG_RESTORE_DRILL, {**drill_params, "identity_file": str(identity_file)})
    assert failed.value.details["drill"]["ok"] is False
    assert postgres.databases() == before
    info = run_task(pg_backup.BACKUP_INFO, {"database": pg_database, **s3.args(bucket)})
    assert info["latest_verified"] is None and info["backups"][0]["drill"]["ok"] is False


def test_wrong_identity_is_refused_before_the_target_is_touched(postgres, pg_database, tmp_path, keypair):
    recipient = keypair[1]
    store = {"directory": str(tmp_path / "b")}
    backup(postgres.args(pg_database, recipients=[recipient], **store))
    stranger = tmp_path / "other.key"
    stranger.write_text(age.generate_identity()[0] + "\n")
    before = postgres.databases()
    with pytest.raises(CaretakerError, match="none of the identities"):
        restore(postgres.args(pg_database, target="never_created", identity_file=str(stranger), **store))
    with pytest.raises(ConfigError, match="identity_file"):
        restore(postgres.args(pg_database, target="never_created", **store))
    assert postgres.databases() == before


def test_backup_info_lists_manifests_and_drills(postgres, pg_database, tmp_path, caretaker_host):
    store = {"directory": str(tmp_path / "b")}
    first = backup(postgres.args(pg_database, **store))
    second = backup(postgres.args(pg_database, **store))
    info = run_task(pg_backup.BACKUP_INFO, {"database": pg_database, **store})
    assert [entry["id"] for entry in info["backups"]] == [first["backup_id"], second["backup_id"]]
    assert info["latest"] == second["backup_id"] and info["latest_verified"] is None
    assert info["backups"][0]["manifest"]["tables"]["public.users"] == 3000


def test_a_sql_ascii_database_backs_up_and_restores(postgres, tmp_path):
    # Debian's initdb under the C locale makes SQL_ASCII databases, for which psycopg returns
    # bytes unless the client encoding is set: the snapshot id then reached pg_dump as "b'...'".
    name = "ascii_" + tmp_path.name[-8:].lower().replace("-", "_")
    with postgres.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" ENCODING SQL_ASCII LC_COLLATE "C" LC_CTYPE "C" TEMPLATE template0')
    try:
        with postgres.connect(name) as conn:
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
            conn.execute("INSERT INTO notes SELECT n, 'note ' || n FROM generate_series(1, 50) n")
        store = {"directory": str(tmp_path / "backups")}
        result = backup(postgres.args(name, **store))
        assert result["changed"] and result["tables"] == 1
        restore(postgres.args(name, target=name + "_copy", **store))
        with postgres.connect(name + "_copy") as conn:
            assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 50
    finally:
        postgres.drop_database(name + "_copy")
        postgres.drop_database(name)
