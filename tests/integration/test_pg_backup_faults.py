"""Backups when things break: pg_dump dies, S3 fails or stalls, runs are SIGKILLed, bad input."""

import json
import random
import signal
import threading
import time

import pytest
from backup_helpers import backup, restore, run_task
from caretaker.backup import pg_backup
from caretaker.foundation import argspec
from caretaker.foundation.errors import CaretakerError, ConfigError, TransientError
from caretaker.lib import age
from caretaker.lib.backup_store import open_store


def fill_incompressible(postgres, database, megabytes):
    with postgres.connect(database) as conn:
        conn.execute(
            "CREATE TABLE blobs AS SELECT g AS id, decode(string_agg(md5(random()::text), ''), 'hex') AS data"
            " FROM generate_series(1, %s) g, generate_series(1, 64) r GROUP BY g",
            (megabytes * 1024,),
        )


def uploads_started(proxy):
    return [path for method, path in proxy.requests if method == "POST" and path.endswith("?uploads")]


def catalogs(s3, bucket):
    return {key: json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()) for key in s3.keys(bucket) if key.endswith("catalog.json")}


def manifests(s3, bucket):
    """Every manifest in the bucket's catalogs: the backups that exist."""
    return [manifest for catalog in catalogs(s3, bucket).values() for manifest in catalog["backups"].values()]


def data_keys(s3, bucket):
    return [key for key in s3.keys(bucket) if ".dump." in key]


@pytest.fixture(scope="module")
def big_database(postgres):
    name = postgres.create_database()
    fill_incompressible(postgres, name, 24)
    return name


def test_pg_dump_dying_mid_stream_leaves_no_backup(postgres, big_database, s3):
    bucket = s3.create_bucket()
    # Part 1 stalls, so the pipeline backs up and pg_dump blocks mid-stream where we kill it.
    s3.proxy.inject("stall", method="PUT", match="partNumber=1$", stall_seconds=3)
    terminated = []

    def terminate_pg_dump():
        deadline = time.monotonic() + 20
        with postgres.connect() as conn:
            while time.monotonic() < deadline and not terminated:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND datname = %s AND query LIKE 'COPY%%'",
                    (big_database,),
                ).fetchall()
                terminated.extend(row[0] for row in rows if row[0])
                time.sleep(0.05)

    killer = threading.Thread(target=terminate_pg_dump)
    killer.start()
    with pytest.raises(CaretakerError, match="pg_dump exited with status 1"):
        backup(postgres.args(big_database, prune=False, read_timeout=10, **s3.args(bucket)))
    killer.join()
    assert terminated, "the test never caught pg_dump mid-stream"
    assert manifests(s3, bucket) == [] and data_keys(s3, bucket) == []
    assert s3.uploads(bucket) == []


def test_transient_s3_errors_are_retried_to_a_true_success(postgres, big_database, s3):
    bucket = s3.create_bucket()
    faults = [
        s3.proxy.inject("503", method="PUT", match="partNumber=2$", times=2),
        s3.proxy.inject("reset", method="PUT", match="partNumber=1$"),
        s3.proxy.inject("500", method="POST", match="uploadId=", times=1),
        s3.proxy.inject("500", method="PUT", match=r"catalog\.json$", skip=1, times=1),
    ]
    params = postgres.args(big_database, prune=False, **s3.args(bucket))
    result = backup(params)
    assert [fault.fired for fault in faults] == [2, 1, 1, 1]
    assert len(manifests(s3, bucket)) == 1 and s3.uploads(bucket) == []
    target = big_database + "_retried"
    restore({**params, "target": target})
    with postgres.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == manifests(s3, bucket)[0]["tables"]["public.blobs"]
    assert result["size"] > 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("fault", "where"),
    [
        ({"action": "500", "method": "PUT", "match": "partNumber=2$", "times": 0}, "part"),
        ({"action": "reset", "method": "PUT", "match": "partNumber=", "skip": 1, "times": 0}, "part"),
        ({"action": "stall", "method": "PUT", "match": "partNumber=1$", "times": 0, "stall_seconds": 3}, "part"),
        ({"action": "503", "method": "POST", "match": "uploadId=", "times": 0}, "complete"),
        ({"action": "500", "method": "PUT", "match": "catalog.json", "skip": 1, "times": 0}, "manifest"),
    ],
)
def test_s3_failing_for_good_fails_the_run_without_a_manifest(postgres, big_database, s3, fault, where):
    bucket = s3.create_bucket()
    injected = s3.proxy.inject(**fault)
    params = postgres.args(big_database, prune=False, max_attempts=2, read_timeout=1, **s3.args(bucket))
    with pytest.raises(TransientError, match=r"cannot (upload part|complete the upload|write)"):
        backup(params)
    assert injected.fired >= 2
    assert manifests(s3, bucket) == []
    assert s3.uploads(bucket) == []
    info = run_task(pg_backup.BACKUP_INFO, {"database": big_database, **s3.args(bucket)})
    assert info["backups"] == []
    if where == "manifest":
        # the bytes are stored but without a manifest they are no backup: the catalog still names the
        # run as pending (S3 refused that change too), and the run is removed once stale
        assert len(data_keys(s3, bucket)) == 1 and info["pending"] == data_keys(s3, bucket)
        s3.proxy.reset()
        pruned = run_task(pg_backup.BACKUP_PRUNE, {"database": big_database, "stale_upload_hours": 0, **s3.args(bucket)})
        assert pruned["abandoned"] == info["pending"] and data_keys(s3, bucket) == []
    else:
        assert data_keys(s3, bucket) == [] and info["pending"] == []


def test_an_upload_whose_abort_fails_too_is_cleaned_by_the_next_run(postgres, big_database, s3):
    bucket = s3.create_bucket()
    s3.proxy.inject("500", method="PUT", match="partNumber=2$", times=0)
    aborts = s3.proxy.inject("500", method="DELETE", match="uploadId=", times=0)
    params = postgres.args(big_database, prune=False, max_attempts=2, read_timeout=1, **s3.args(bucket))
    with pytest.raises(TransientError, match="cannot upload part"):
        backup(params)
    assert aborts.fired >= 1
    left = s3.uploads(bucket)
    assert len(left) == 1, "the failed run's upload must still be open: the test proves nothing otherwise"
    assert [catalog["abandoned"] for catalog in catalogs(s3, bucket).values()] == [[left[0]["Key"]]]  # named for the next run
    s3.proxy.reset()
    result = backup(params)
    assert s3.uploads(bucket) == []
    assert data_keys(s3, bucket) == [result["key"]]
    assert [manifest["id"] for manifest in manifests(s3, bucket)] == [result["backup_id"]]


def test_sigkill_at_random_points_never_leaves_a_false_backup(postgres, s3, caretaker_host):
    database = postgres.create_database()
    fill_incompressible(postgres, database, 12)
    bucket = s3.create_bucket()
    args = postgres.args(database, prune=False, **s3.args(bucket))
    caretaker_host.add_job("backup", kind="pg_backup", args=args, timeout=300)
    started = time.monotonic()
    code, report = caretaker_host.run("backup")
    assert code == 0, report
    duration = time.monotonic() - started
    rng = random.Random(20261123)
    left_open = 0
    for _run in range(20):
        proc = caretaker_host.popen("run", "backup")
        time.sleep(rng.uniform(0.2, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        time.sleep(0.3)  # let the orphaned task and pg_dump notice their parent is gone
        left_open += bool(s3.uploads(bucket))  # the next run must clean it
    assert left_open, "no kill landed mid-upload: the test proves nothing"
    code, report = caretaker_host.run("backup")
    assert code == 0, report
    assert s3.uploads(bucket) == [], "the next run must clean incomplete uploads"
    store = open_store(argspec.validate(pg_backup.INFO_SPEC, {"database": database, **s3.args(bucket)}))
    document = pg_backup.Catalog(store, database).read()
    listed = pg_backup.Catalog.ids(document)
    assert len(listed) >= 2 and document["pending"] == {}
    # every stored object belongs to a listed backup: nothing a killed run wrote is left
    assert sorted(data_keys(s3, bucket)) == sorted(document["backups"][backup_id]["key"] for backup_id in listed)
    for backup_id in listed:
        pg_backup.verify_stored(store, pg_backup.manifest_of(document["backups"][backup_id]), None)
    # every listed backup restores; restoring them all takes long, so restore the oldest and newest fully
    for backup_id in (listed[0], listed[-1]):
        target = f"{database}_{backup_id[-6:]}"
        restore({**args, "backup": backup_id, "target": target})
        with postgres.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == document["backups"][backup_id]["tables"]["public.blobs"]


def test_concurrent_backup_of_the_same_database_is_refused(postgres, pg_database, s3, caretaker_host):
    bucket = s3.create_bucket()
    args = postgres.args(pg_database, prune=False, **s3.args(bucket))
    caretaker_host.add_job("backup", kind="pg_backup", args=args)
    caretaker_host.add_job("backup-again", kind="pg_backup", args=args)
    s3.proxy.inject("stall", method="POST", match=r"\?uploads$", stall_seconds=4)
    first = caretaker_host.popen("run", "backup", "--json")
    deadline = time.monotonic() + 20
    while not uploads_started(s3.proxy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uploads_started(s3.proxy)
    code, report = caretaker_host.run("backup")
    assert code == 73 and report["status"] == "already_running"
    # another job of the same database: PostgreSQL's advisory lock refuses it
    code, report = caretaker_host.run("backup-again")
    assert code == 75 and "another backup of database" in report["error"]
    out = first.communicate(timeout=120)[0]
    assert first.returncode == 0, out
    assert len(manifests(s3, bucket)) == 1


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"database": "no_such_db"}, ConfigError, "database 'no_such_db' does not exist"),
        ({"pg_port": 1}, TransientError, "cannot reach PostgreSQL at 127.0.0.1 port 1"),
        ({"pg_password": "wrong"}, ConfigError, "pg_password: PostgreSQL at 127.0.0.1 .* refused the credentials"),
        ({"bucket": "no-such-bucket"}, ConfigError, "bucket: bucket 'no-such-bucket' does not exist"),
        ({"recipients": ["age1notakey"]}, ConfigError, r"recipients\[0\]: 'age1notakey' is not an age X25519 recipient"),
        ({"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, ConfigError, "keep_last: the retention policy keeps nothing"),
        ({"min_keep": 0}, ConfigError, "min_keep: must be at least 1"),
        ({"compression_level": 40}, ConfigError, "compression_level: must be between 1 and 22"),
    ],
)
def test_bad_input_fails_clearly_before_any_upload(postgres, pg_database, s3, change, error, message):
    bucket = s3.create_bucket()
    params = {**postgres.args(pg_database), **s3.args(bucket), **change}
    with pytest.raises(error, match=message):
        backup(params)
    assert not [request for request in s3.proxy.requests if request[0] in ("POST", "PUT")]
    assert s3.keys(bucket) == []


def test_bad_input_through_the_cli_exits_2_and_names_the_field(postgres, pg_database, tmp_path, caretaker_host):
    recipient = age.generate_identity()[1]
    bad_key = recipient[:-1] + ("x" if recipient[-1] != "x" else "y")  # a changed last character breaks the checksum
    job_file = caretaker_host.add_job("backup", kind="pg_backup", args=postgres.args(pg_database, directory=str(tmp_path / "b"), recipients=[bad_key]))
    # refused when the job file is read, before anything runs, and by `caretaker validate`, which
    # the jobs role runs on each job file before installing it
    for proc in (caretaker_host.cli("run", "backup"), caretaker_host.cli("validate", str(job_file))):
        assert proc.returncode == 2, proc
        assert f"args.recipients[0]: {bad_key!r} is not an age X25519 recipient" in proc.stderr
    assert not (tmp_path / "b").exists()
