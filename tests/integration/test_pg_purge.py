"""pg_purge against a real PostgreSQL 15: batches, cursor, archive, check mode, bad input, injection."""

import csv
import io
import json
import uuid

import psycopg
import pytest
import zstandard
from caretaker.data.pg_purge import PG_PURGE
from caretaker.foundation import argspec
from caretaker.foundation.config import Settings
from caretaker.foundation.errors import CaretakerError, ConfigError, TransientError
from caretaker.foundation.tasks import Context
from psycopg import sql

OLD, NEW = 300, 120


@pytest.fixture
def db(empty_database):
    """events: OLD rows 30 days old (a third of them 'debug'), NEW rows from the last hour."""
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, kind text NOT NULL, body text)")
        conn.execute("CREATE INDEX ON events (created_at)")
        conn.execute(
            "INSERT INTO events (created_at, kind, body) SELECT now() - interval '30 days' + g * interval '1 second',"
            " CASE WHEN g %% 3 = 0 THEN 'debug' ELSE 'info' END, 'old ' || g FROM generate_series(1, %s) g",
            (OLD,),
        )
        conn.execute(
            "INSERT INTO events (created_at, kind, body) SELECT now() - g * interval '10 seconds', 'info', 'new ' || g FROM generate_series(1, %s) g",
            (NEW,),
        )
    return empty_database


def scalar(conninfo, query, params=None):
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query, params).fetchone()[0]


def settings(tmp_path):
    return Settings(host="testhost", state_dir=str(tmp_path / "state"), metrics_dir=str(tmp_path / "metrics"))


def purge(conninfo, tmp_path, tables, check=False, job="purge-events", **extra):
    args = argspec.validate(PG_PURGE.argument_spec, {"conninfo": conninfo, "tables": tables, **extra})
    return PG_PURGE.run(args, Context(check_mode=check, job=job, settings=settings(tmp_path)))


EVENTS = {"name": "events", "time_column": "created_at", "older_than": "7d"}


def test_check_mode_counts_and_deletes_nothing(db, tmp_path):
    result = purge(db, tmp_path, [EVENTS], check=True)
    assert result["changed"] is True
    assert result["would_delete"] == OLD
    assert result["tables"][0]["would_delete"] == OLD
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW
    assert not (tmp_path / "state").exists()


def test_deletes_expired_rows_in_batches_and_keeps_the_rest(db, tmp_path):
    result = purge(db, tmp_path, [{**EVENTS, "batch_size": 70, "pause": 0}])
    assert result["changed"] is True
    assert result["rows_deleted"] == OLD
    assert result["batches"] == 5  # 70 * 4 + 20
    assert result["budget_stopped"] is False
    assert scalar(db, "SELECT count(*) FROM events") == NEW
    assert scalar(db, "SELECT count(*) FROM events WHERE created_at < now() - interval '7 days'") == 0
    again = purge(db, tmp_path, [EVENTS], check=True)
    assert again["changed"] is False
    assert purge(db, tmp_path, [EVENTS])["changed"] is False

    text = (tmp_path / "metrics" / "caretaker_purge_purge-events.prom").read_text()
    assert 'caretaker_purge_rows_deleted_total{job="purge-events",table="public.events"} 300.0' in text
    assert 'caretaker_purge_batches_total{job="purge-events",table="public.events"} 5.0' in text


def test_structured_filters_limit_what_goes(db, tmp_path):
    table = {**EVENTS, "where": [{"column": "kind", "op": "in", "value": ["debug", "trace"]}, {"column": "body", "op": "like", "value": "old %"}]}
    assert purge(db, tmp_path, [table], check=True)["would_delete"] == OLD // 3
    result = purge(db, tmp_path, [table])
    assert result["rows_deleted"] == OLD // 3
    assert scalar(db, "SELECT count(*) FROM events WHERE kind = 'debug'") == 0
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW - OLD // 3
    not_null = {**EVENTS, "where": [{"column": "body", "op": "is_not_null"}, {"column": "kind", "op": "!=", "value": "info"}]}
    assert purge(db, tmp_path, [not_null], check=True)["would_delete"] == 0


def test_budget_stops_a_run_and_the_next_run_resumes_at_the_cursor(db, tmp_path):
    table = {**EVENTS, "batch_size": 10, "pause": 0.2, "budget": 0.3}
    first = purge(db, tmp_path, [table])
    assert first["budget_stopped"] is True
    assert 0 < first["rows_deleted"] < OLD
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW - first["rows_deleted"]
    # The oldest rows went first, in cursor order.
    assert scalar(db, "SELECT min(id) FROM events") == first["rows_deleted"] + 1
    rest = purge(db, tmp_path, [{**table, "budget": 600, "pause": 0}])
    assert rest["tables"][0]["resumed"] is True
    assert rest["tables"][0]["cutoff"] == first["tables"][0]["cutoff"]
    assert rest["budget_stopped"] is False
    assert first["rows_deleted"] + rest["rows_deleted"] == OLD
    assert scalar(db, "SELECT count(*) FROM events") == NEW
    # The pass finished, so the cursor is gone and the next run starts afresh.
    assert purge(db, tmp_path, [table])["tables"][0]["resumed"] is False


def test_batches_grow_towards_the_cap_and_stop_at_the_first_short_one(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO events (created_at, kind) SELECT now() - interval '20 days' + g * interval '1 ms', 'bulk' FROM generate_series(1, 4700) g")
    table = {**EVENTS, "batch_size": 3000}
    adaptive = purge(db, tmp_path, [table], job="adaptive")
    assert adaptive["rows_deleted"] == OLD + 4700
    assert adaptive["batches"] == 3  # 1000, then 3000 (the cap), then the last 1000
    assert scalar(db, "SELECT count(*) FROM events") == NEW


def test_table_without_primary_key_is_batched_on_ctid(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE logs AS SELECT created_at, body FROM events")
        conn.execute("CREATE INDEX ON logs (created_at)")
        # Same timestamps on many rows: the ctid tie-break must still visit each once.
        conn.execute("UPDATE logs SET created_at = date_trunc('day', created_at)")
    result = purge(db, tmp_path, [{"name": "logs", "time_column": "created_at", "older_than": "7d", "batch_size": 7, "pause": 0}])
    assert result["rows_deleted"] == OLD
    assert scalar(db, "SELECT count(*) FROM logs") == NEW


def test_composite_primary_key_and_date_column(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE daily (day date, shard int, total int, PRIMARY KEY (day, shard))")
        conn.execute("CREATE INDEX ON daily (day)")
        conn.execute("INSERT INTO daily SELECT current_date - d, s, d * s FROM generate_series(0, 19) d, generate_series(1, 4) s")
    result = purge(db, tmp_path, [{"name": "daily", "time_column": "day", "older_than": "10d", "batch_size": 3, "pause": 0}])
    assert result["rows_deleted"] == 9 * 4  # days 11..19
    assert scalar(db, "SELECT min(day) FROM daily") == scalar(db, "SELECT current_date - 10")


def test_archive_holds_every_deleted_row_before_the_delete(db, tmp_path):
    archive = tmp_path / "archive"
    expected = set(_rows(db, "SELECT id::text, kind, body FROM events WHERE created_at < now() - interval '7 days'"))
    result = purge(db, tmp_path, [{**EVENTS, "batch_size": 100, "archive": True}], archive_dir=str(archive))
    assert result["rows_archived"] == result["rows_deleted"] == OLD
    files = sorted((archive / "public.events").glob("*.csv.zst"))
    assert len(files) == result["batches"] == 3
    archived = set()
    for path in files:
        text = zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read().decode()
        reader = csv.DictReader(io.StringIO(text))
        assert reader.fieldnames == ["id", "created_at", "kind", "body"]
        archived |= {(row["id"], row["kind"], row["body"]) for row in reader}
    assert archived == expected
    assert not list(archive.rglob("*.partial"))


def test_archiving_needs_only_select_and_delete(db, tmp_path):
    role = f"purger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'purger-pw'").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT, DELETE ON events TO {}").format(sql.Identifier(role)))
    try:
        login = " ".join(part for part in db.split() if not part.startswith(("user=", "password="))) + f" user={role} password=purger-pw"
        result = purge(login, tmp_path, [{**EVENTS, "batch_size": 100, "archive": True}], archive_dir=str(tmp_path / "archive"))
        assert result["rows_archived"] == result["rows_deleted"] == OLD
        assert scalar(db, "SELECT count(*) FROM events") == NEW
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_archive_failure_stops_with_nothing_deleted(db, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive directory should be")
    with pytest.raises(CaretakerError, match="archive"):
        purge(db, tmp_path, [{**EVENTS, "archive": True}], archive_dir=str(blocker))
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def _archived_rows(blobs):
    rows = set()
    for blob in blobs:
        reader = csv.DictReader(io.StringIO(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read().decode()))
        assert reader.fieldnames == ["id", "created_at", "kind", "body"]
        rows |= {(row["id"], row["kind"], row["body"]) for row in reader}
    return rows


def _objects(s3, bucket):
    client = s3.client()
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in s3.keys(bucket)}


def test_archive_to_s3_holds_every_deleted_row_before_the_delete(db, tmp_path, s3):
    bucket = s3.create_bucket()
    expected = set(_rows(db, "SELECT id::text, kind, body FROM events WHERE created_at < now() - interval '7 days'"))
    result = purge(db, tmp_path, [{**EVENTS, "batch_size": 100, "archive": True}], archive=s3.args(bucket, prefix="purged/app"))
    assert result["rows_archived"] == result["rows_deleted"] == OLD
    objects = _objects(s3, bucket)
    assert len(objects) == result["batches"] == 3
    assert all(key.startswith("purged/app/public.events/") and key.endswith(".csv.zst") for key in objects)
    assert _archived_rows(objects.values()) == expected
    assert s3.uploads(bucket) == []
    assert scalar(db, "SELECT count(*) FROM events") == NEW


def test_missing_bucket_is_refused_before_any_row_goes(db, tmp_path, s3):
    for check in (True, False):
        with pytest.raises(ConfigError) as raised:
            purge(db, tmp_path, [{**EVENTS, "archive": True}], check=check, archive=s3.args("caretaker-no-such-bucket"))
        assert raised.value.field == "archive.bucket"
        assert "bucket 'caretaker-no-such-bucket' does not exist" in str(raised.value)
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def test_s3_failure_mid_run_keeps_the_rows_of_that_batch(db, tmp_path, s3):
    bucket = s3.create_bucket()
    # The first batch's upload goes through; every part upload after it fails.
    s3.proxy.inject("500", method="PUT", match="partNumber=", skip=1, times=0)
    with pytest.raises(TransientError, match=r"archiving a batch to s3://.* failed, nothing of it was deleted"):
        purge(db, tmp_path, [{**EVENTS, "batch_size": 100, "archive": True}], archive=s3.args(bucket, max_attempts=1))
    objects = _objects(s3, bucket)
    assert len(objects) == 1
    archived = _archived_rows(objects.values())
    assert len(archived) == 100
    left = set(_rows(db, "SELECT id::text, kind, body FROM events"))
    assert len(left) == OLD + NEW - 100
    assert not archived & left  # exactly the archived batch went
    assert s3.uploads(bucket) == []  # the failed upload was aborted


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"archive_dir": "/tmp/x", "archive": {"destination": "local", "directory": "/tmp/y"}}, "archive_dir", "not both"),
        ({"archive": {"destination": "local"}}, "archive.directory", "required when destination is local"),
        ({"archive": {"destination": "s3"}}, "archive.bucket", "required when destination is s3"),
        ({"archive": {"destination": "s3", "bucket": "b", "part_size_mb": 1}}, "archive.part_size_mb", "between 5 and 5120"),
    ],
)
def test_bad_archive_options_are_refused_before_any_row_goes(db, tmp_path, extra, field, message):
    with pytest.raises(ConfigError) as raised:
        purge(db, tmp_path, [{**EVENTS, "archive": True}], **extra)
    assert raised.value.field == field
    assert message in str(raised.value)
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def test_archive_without_directory_is_refused(db, tmp_path):
    with pytest.raises(ConfigError, match="archive_dir"):
        purge(db, tmp_path, [{**EVENTS, "archive": True}])


def test_missing_index_is_refused_with_the_statement_to_run_or_warned(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE audit (id int PRIMARY KEY, at timestamp)")
        conn.execute("INSERT INTO audit SELECT g, now() - interval '1 year' FROM generate_series(1, 10) g")
    table = {"name": "audit", "time_column": "at", "older_than": "30d"}
    with pytest.raises(ConfigError, match=r'CREATE INDEX CONCURRENTLY ON "public"."audit" \("at"\)'):
        purge(db, tmp_path, [table])
    assert scalar(db, "SELECT count(*) FROM audit") == 10
    result = purge(db, tmp_path, [{**table, "missing_index": "warn"}])
    assert result["rows_deleted"] == 10
    assert "CREATE INDEX CONCURRENTLY" in result["warnings"][0]


def test_a_locked_row_makes_the_batch_give_up_after_lock_timeout(db, tmp_path):
    with psycopg.connect(db) as holder:
        holder.execute("SELECT * FROM events WHERE id = 1 FOR UPDATE")
        with pytest.raises(TransientError, match="lock_timeout"):
            purge(db, tmp_path, [{**EVENTS, "lock_timeout": 0.2}])
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "nope"}, "tables[1].name", "table public.nope does not exist"),
        ({"schema": "nope"}, "tables[1].name", "does not exist"),
        ({"time_column": "nope"}, "tables[1].time_column", "column 'nope' does not exist"),
        ({"time_column": "kind"}, "tables[1].time_column", "is text, not a timestamp"),
        ({"older_than": "2999-01-01"}, "tables[1].older_than", "is in the future"),
        ({"older_than": "last tuesday"}, "tables[1].older_than", "neither an age"),
        ({"older_than": "0d"}, "tables[1].older_than", "positive age"),
        ({"batch_size": 0}, "tables[1].batch_size", "at least 1"),
        ({"budget": 0}, "tables[1].budget", "positive"),
        ({"where": [{"column": "nope", "value": 1}]}, "tables[1].where[0].column", "column 'nope' does not exist"),
        ({"where": [{"column": "id", "value": "ten"}]}, "tables[1].where", "invalid input syntax"),
        ({"where": [{"column": "id", "op": "in", "value": []}]}, "tables[1].where[0].value", "non-empty list"),
        ({"where": [{"column": "id", "op": "is_null", "value": 3}]}, "tables[1].where[0].value", "takes no value"),
        ({"where": [{"column": "id", "op": ">"}]}, "tables[1].where[0].value", "one plain value"),
    ],
)
def test_bad_input_fails_before_any_table_changes(db, tmp_path, change, field, message):
    # tables[0] is valid and comes first: it must not lose a row either.
    with pytest.raises(ConfigError) as raised:
        purge(db, tmp_path, [EVENTS, {**EVENTS, **change}])
    assert raised.value.field == field
    assert message in str(raised.value)
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def test_unknown_operator_is_refused_by_the_argument_spec(db, tmp_path):
    with pytest.raises(ConfigError, match="op: must be one of"):
        purge(db, tmp_path, [{**EVENTS, "where": [{"column": "kind", "op": "; DROP TABLE events", "value": "x"}]}])


INJECTIONS = ['events"; DROP TABLE victim; --', "x' OR '1'='1", "events; DROP TABLE victim", 'a"b']


@pytest.mark.parametrize("evil", INJECTIONS)
@pytest.mark.parametrize("option", ["name", "schema", "time_column", "where.column"])
def test_injection_through_names_is_just_a_missing_name(db, tmp_path, evil, option):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
    table = dict(EVENTS)
    if option == "where.column":
        table["where"] = [{"column": evil, "value": "x"}]
    else:
        table[option] = evil
    with pytest.raises(ConfigError, match="does not exist"):
        purge(db, tmp_path, [table])
    assert scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'victim'") == 1
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def test_a_table_named_like_an_injection_is_purged_as_named(db, tmp_path):
    evil = 'ev"; DROP TABLE victim; --'
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute(f'CREATE TABLE "{evil.replace(chr(34), chr(34) * 2)}" (id int PRIMARY KEY, "t; x" timestamptz)')
        conn.execute(f'CREATE INDEX ON "{evil.replace(chr(34), chr(34) * 2)}" ("t; x")')
        conn.execute(f"INSERT INTO \"{evil.replace(chr(34), chr(34) * 2)}\" SELECT g, now() - interval '9 days' FROM generate_series(1, 5) g")
    result = purge(db, tmp_path, [{"name": evil, "time_column": "t; x", "older_than": "7d"}])
    assert result["rows_deleted"] == 5
    assert scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'victim'") == 1


@pytest.mark.parametrize("evil", ["'; DROP TABLE victim; --", "info' OR '1'='1", "1); DELETE FROM events; --"])
@pytest.mark.parametrize("op", ["=", "!=", "like", "in"])
def test_injection_through_values_is_just_a_value(db, tmp_path, evil, op):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
    value = [evil] if op == "in" else evil
    result = purge(db, tmp_path, [{**EVENTS, "where": [{"column": "kind", "op": op, "value": value}]}])
    expected = OLD if op == "!=" else 0
    assert result["rows_deleted"] == expected
    assert scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'victim'") == 1
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW - expected


def test_injection_through_the_cutoff_is_unparsable(db, tmp_path):
    with pytest.raises(ConfigError, match="neither an age"):
        purge(db, tmp_path, [{**EVENTS, "older_than": "2020-01-01'; DROP TABLE events; --"}])
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def test_bad_conninfo_does_not_echo_the_password(tmp_path):
    with pytest.raises(ConfigError) as raised:
        purge("host=x password=hunter2 =broken", tmp_path, [EVENTS])
    assert "hunter2" not in str(raised.value)
    assert raised.value.field == "conninfo"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("password=wrong", ConfigError, r"conninfo: PostgreSQL at 127\.0\.0\.1 port \d+ refused the credentials"),
        ("dbname=no_such_db", ConfigError, "conninfo: database 'no_such_db' does not exist"),
        ("port=1", TransientError, "cannot reach PostgreSQL at 127.0.0.1 port 1"),
    ],
)
def test_connection_failures_say_whether_retrying_can_help(db, tmp_path, change, error, message):
    with pytest.raises(error, match=message) as raised:
        purge(f"{db} {change}", tmp_path, [EVENTS])
    assert "password=" not in str(raised.value)  # the connection string is never echoed
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def test_runs_as_a_job_through_the_runner(db, caretaker_host):
    caretaker_host.add_job("purge-events", kind="pg_purge", args={"conninfo": db, "tables": [{**EVENTS, "batch_size": 100}]})
    code, report = caretaker_host.run("purge-events")
    assert code == 0, report
    assert scalar(db, "SELECT count(*) FROM events") == NEW
    prom = (caretaker_host.metrics / "caretaker_purge_purge-events.prom").read_text()
    assert 'caretaker_purge_rows_deleted_total{job="purge-events",table="public.events"} 300.0' in prom
    assert report["result"]["rows_deleted"] == OLD, json.dumps(report)[:2000]
    assert report["result"]["batches"] == 3


def test_job_file_with_bad_purge_args_is_refused_before_running(db, caretaker_host):
    path = caretaker_host.add_job("purge-bad", kind="pg_purge", args={"conninfo": db, "tables": [{**EVENTS, "older_than": "soonish"}]})
    proc = caretaker_host.cli("run", "purge-bad")
    assert proc.returncode == 2, proc.stderr
    assert "tables[0].older_than" in proc.stderr
    assert str(path) in proc.stderr or "purge-bad" in proc.stderr
    assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW


def _rows(conninfo, query):
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


def test_a_database_error_is_a_clear_failure_with_nothing_deleted(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS purge_reader")
        conn.execute("CREATE ROLE purge_reader LOGIN PASSWORD 'reader-only'")
        conn.execute("GRANT SELECT ON events TO purge_reader")
    try:
        with pytest.raises(CaretakerError, match="permission denied for table events"):
            purge(db + " user=purge_reader password=reader-only", tmp_path, [EVENTS])
        assert scalar(db, "SELECT count(*) FROM events") == OLD + NEW
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("REVOKE ALL ON events FROM purge_reader")
            conn.execute("DROP ROLE purge_reader")
