"""job_retry against a real PostgreSQL job table and a real Redis with rq's own workers."""

import datetime as dt
import json
import operator
import os

import psycopg
import pytest
from caretaker.data.job_retry import JOB_RETRY
from caretaker.foundation import argspec
from caretaker.foundation.config import Settings
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.ledger import Ledger
from caretaker.foundation.tasks import Context


@pytest.fixture
def host_settings(tmp_path, inbox):
    return Settings(
        host="testhost", state_dir=str(tmp_path / "state"), alert_routes={"ops": {"type": "webhook", "url": inbox.url("webhook")}}, default_routes=["ops"]
    )


def retry(host_settings, check=False, job="retry-app", **args):
    values = argspec.validate(JOB_RETRY.argument_spec, args)
    return JOB_RETRY.run(values, Context(check_mode=check, job=job, settings=host_settings))


# --- PostgreSQL job table -------------------------------------------------------


@pytest.fixture
def jobs_db(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE app_jobs (id serial PRIMARY KEY, payload text, state text NOT NULL, tries int, failure text, available_at timestamptz)")
        rows = [
            ("a", "failed", 1, "ConnectionError: db1 went away"),
            ("b", "failed", 4, "TimeoutError: upstream"),
            ("c", "failed", 5, "TimeoutError: upstream"),  # its last attempt
            ("d", "failed", 1, "ValidationError: email is not valid"),  # never retried
            ("e", "done", 1, None),
            ("f", "queued", 0, None),
        ]
        for row in rows:
            conn.execute("INSERT INTO app_jobs (payload, state, tries, failure) VALUES (%s, %s, %s, %s)", row)
    return empty_database


TABLE = {
    "name": "app_jobs",
    "status_column": "state",
    "attempts_column": "tries",
    "error_column": "failure",
    "run_at_column": "available_at",
}
POLICY = {"max_attempts": 5, "never_retry": ["^ValidationError"]}


def states(conninfo):
    with psycopg.connect(conninfo) as conn:
        return dict(conn.execute("SELECT payload, state FROM app_jobs ORDER BY id").fetchall())


def test_check_mode_lists_what_would_be_requeued_and_what_would_die(jobs_db, host_settings):
    result = retry(host_settings, check=True, backend="postgres", conninfo=jobs_db, table=TABLE, **POLICY)
    assert result["changed"] is True
    assert [entry["ref"] for entry in result["requeued"]] == ["public.app_jobs:1", "public.app_jobs:2"]
    assert [entry["ref"] for entry in result["dead"]] == ["public.app_jobs:3", "public.app_jobs:4"]
    assert "used all 5 attempts" in result["dead"][0]["reason"]
    assert "never_retry" in result["dead"][1]["reason"]
    assert states(jobs_db) == {"a": "failed", "b": "failed", "c": "failed", "d": "failed", "e": "done", "f": "queued"}
    assert not os.path.exists(host_settings.database)


def test_requeues_with_backoff_and_moves_the_rest_to_dead(jobs_db, host_settings, inbox):
    result = retry(host_settings, backend="postgres", conninfo=jobs_db, table={**TABLE, "increment_attempts": True}, **POLICY)
    assert states(jobs_db) == {"a": "queued", "b": "queued", "c": "dead", "d": "dead", "e": "done", "f": "queued"}
    assert result["dead_total"] == 2
    with psycopg.connect(jobs_db) as conn:
        waits = dict(conn.execute("SELECT payload, extract(epoch FROM available_at - now()) FROM app_jobs WHERE payload IN ('a', 'b')").fetchall())
        tries = dict(conn.execute("SELECT payload, tries FROM app_jobs").fetchall())
    assert 14 <= waits["a"] <= 15 + 10  # first retry: 0**4 + 15 + rand(10) * 1
    assert 14 + 81 <= waits["b"] <= 15 + 81 + 40  # fourth: 3**4 + 15 + rand(10) * 4
    assert tries["a"] == 2 and tries["c"] == 5
    # Dead jobs are caretaker dead letters, and the grown dead set raised an alert.
    ledger = Ledger(host_settings.database)
    letters = ledger.dead_letters(job="retry-app")
    ledger.close()
    assert [(letter["source"], letter["ref"]) for letter in letters] == [("postgres", "public.app_jobs:3"), ("postgres", "public.app_jobs:4")]
    assert "ValidationError" in letters[1]["error"]
    assert result["alert"]["action"] == "trigger"
    assert len(inbox.payloads("webhook")) == 1
    assert inbox.payloads("webhook")[0]["action"] == "trigger" and inbox.payloads("webhook")[0]["details"]["dead_total"] == 2
    # Nothing failed since: nothing to do, the alert resolves.
    again = retry(host_settings, backend="postgres", conninfo=jobs_db, table=TABLE, **POLICY)
    assert again["changed"] is False
    assert again["alert"]["action"] == "resolve"
    assert [alert["action"] for alert in inbox.payloads("webhook")] == ["trigger", "resolve"]


def test_dead_set_over_the_cap_alerts_critical(jobs_db, host_settings, inbox):
    with psycopg.connect(jobs_db, autocommit=True) as conn:
        conn.execute("INSERT INTO app_jobs (payload, state, tries) SELECT 'old' || g, 'dead', 9 FROM generate_series(1, 3) g")
    result = retry(host_settings, backend="postgres", conninfo=jobs_db, table=TABLE, dead_cap=3, **POLICY)
    assert result["dead_total"] == 5
    assert result["alert"]["severity"] == "critical"
    assert "more than the cap of 3" in inbox.payloads("webhook")[0]["summary"]


def test_dead_letters_show_in_caretaker_status(jobs_db, caretaker_host):
    caretaker_host.add_job("retry-app", kind="job_retry", args={"backend": "postgres", "conninfo": jobs_db, "table": TABLE, **POLICY})
    code, report = caretaker_host.run("retry-app")
    assert code == 0, report
    status = caretaker_host.status()
    refs = sorted(letter["ref"] for letter in status["dead_letters"] if letter["job"] == "retry-app")
    assert refs == ["public.app_jobs:3", "public.app_jobs:4"]
    assert states(jobs_db)["a"] == "queued"


@pytest.mark.parametrize("column", ["id_column", "status_column", "attempts_column", "error_column", "run_at_column"])
def test_job_table_missing_a_configured_column_changes_nothing(jobs_db, host_settings, column):
    with pytest.raises(ConfigError) as raised:
        retry(host_settings, backend="postgres", conninfo=jobs_db, table={**TABLE, column: "nope"}, **POLICY)
    assert raised.value.field == f"table.{column}"
    assert "column 'nope' does not exist in table public.app_jobs" in str(raised.value)
    assert states(jobs_db)["a"] == "failed"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"table": {**TABLE, "name": "nope"}}, "table.name", "does not exist"),
        ({"table": None}, "table", "is required when backend is postgres"),
        ({"never_retry": ["(unclosed"]}, "never_retry[0]", "not a regular expression"),
        ({"max_attempts": 0}, "max_attempts", "at least 1"),
        ({"limit": 0}, "limit", "at least 1"),
        ({"backoff": {"factor": 0.5}}, "backoff.factor", "at least 1"),
    ],
)
def test_bad_input_changes_nothing(jobs_db, host_settings, change, field, message):
    args = {"backend": "postgres", "conninfo": jobs_db, "table": TABLE, **POLICY, **change}
    with pytest.raises(ConfigError) as raised:
        retry(host_settings, **args)
    assert raised.value.field == field
    assert message in str(raised.value)
    assert states(jobs_db)["a"] == "failed"


@pytest.mark.parametrize("evil", ['app_jobs"; DROP TABLE app_jobs; --', "app_jobs' OR '1'='1"])
@pytest.mark.parametrize("option", ["name", "schema", "status_column", "error_column"])
def test_injection_through_names(jobs_db, host_settings, evil, option):
    with pytest.raises(ConfigError, match="does not exist"):
        retry(host_settings, backend="postgres", conninfo=jobs_db, table={**TABLE, option: evil}, **POLICY)
    assert states(jobs_db)["a"] == "failed"


@pytest.mark.parametrize("option", ["failed_status", "queued_status", "dead_status"])
def test_injection_through_status_values_is_just_a_value(jobs_db, host_settings, option):
    evil = "failed'; DROP TABLE app_jobs; --"
    retry(host_settings, backend="postgres", conninfo=jobs_db, table={**TABLE, option: evil}, **POLICY)
    with psycopg.connect(jobs_db) as conn:
        values = {row[0] for row in conn.execute("SELECT state FROM app_jobs").fetchall()}
    assert option == "failed_status" or evil in values  # written as data, the table is still there


# --- RQ --------------------------------------------------------------------------


def fail_jobs(redis_url, calls):
    """Enqueue calls that raise and let a real rq worker fail them into the FailedJobRegistry."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    connection = Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    jobs = [queue.enqueue(function, *args) for function, args in calls]
    SimpleWorker([queue], connection=connection).work(burst=True)
    return connection, queue, jobs


def test_rq_failed_jobs_are_scheduled_again_or_marked_dead(redis_db, host_settings):
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    connection, queue, (divide, parse) = fail_jobs(redis_db.url, [(operator.truediv, (1, 0)), (json.loads, ("not json",))])
    assert queue.failed_job_registry.get_job_ids() != []
    args = {"backend": "rq", "redis_url": redis_db.url, "max_attempts": 2, "never_retry": ["JSONDecodeError"]}

    preview = retry(host_settings, check=True, **args)
    assert [entry["ref"] for entry in preview["requeued"]] == [f"rq:default:{divide.id}"]
    assert [entry["ref"] for entry in preview["dead"]] == [f"rq:default:{parse.id}"]
    assert sorted(queue.failed_job_registry.get_job_ids()) == sorted([divide.id, parse.id])

    started = dt.datetime.now(dt.UTC)
    result = retry(host_settings, **args)
    scheduled = ScheduledJobRegistry(queue=queue)
    assert scheduled.get_job_ids() == [divide.id]
    wait = (scheduled.get_scheduled_time(divide.id) - started).total_seconds()
    assert 14 <= wait <= 26
    assert queue.failed_job_registry.get_job_ids() == [parse.id]
    assert Job.fetch(parse.id, connection=connection).meta["caretaker_dead"].startswith("error matches never_retry")
    assert result["dead_total"] == 1

    # The retry fails again: that was its last attempt, so it dies too.
    scheduled.remove(divide.id)
    queue.enqueue_job(Job.fetch(divide.id, connection=connection))
    fail_jobs(redis_db.url, [])
    result = retry(host_settings, **args)
    assert [entry["ref"] for entry in result["dead"]] == [f"rq:default:{divide.id}"]
    assert "used all 2 attempts" in result["dead"][0]["reason"]
    assert result["dead_total"] == 2
    ledger = Ledger(host_settings.database)
    refs = [letter["ref"] for letter in ledger.dead_letters(job="retry-app")]
    ledger.close()
    assert refs == [f"rq:default:{parse.id}", f"rq:default:{divide.id}"]
    # Dead jobs are left alone from now on.
    assert retry(host_settings, **args)["changed"] is False


def test_rq_requeued_job_runs_again_through_rqs_scheduler(redis_db, host_settings):
    from rq import SimpleWorker
    from rq.job import Job, JobStatus

    connection, queue, (job,) = fail_jobs(redis_db.url, [(operator.truediv, (1, 0))])
    retry(host_settings, backend="rq", redis_url=redis_db.url, backoff={"base": 0, "jitter": 0})
    # A worker with the scheduler moves the due job back onto its queue and runs it.
    SimpleWorker([queue], connection=connection).work(burst=True, with_scheduler=True)
    again = Job.fetch(job.id, connection=connection)
    assert again.get_status() == JobStatus.FAILED
    assert again.meta["caretaker_attempts"] == 1
    assert job.id in queue.failed_job_registry.get_job_ids()


def test_rq_unreachable_redis_is_transient(host_settings):
    from caretaker.foundation.errors import TransientError
    from fixtures.ports import free_port

    with pytest.raises(TransientError, match="cannot reach Redis"):
        retry(host_settings, backend="rq", redis_url=f"redis://127.0.0.1:{free_port()}/0")


# --- Laravel failed_jobs -----------------------------------------------------------

# What Laravel's migrations (create_failed_jobs_table, create_jobs_table) create on PostgreSQL.
LARAVEL_SCHEMA = """
create table "failed_jobs" ("id" bigserial not null primary key, "uuid" varchar(255) not null, "connection" text not null,
    "queue" text not null, "payload" text not null, "exception" text not null,
    "failed_at" timestamp(0) without time zone not null default CURRENT_TIMESTAMP);
alter table "failed_jobs" add constraint "failed_jobs_uuid_unique" unique ("uuid");
create table "jobs" ("id" bigserial not null primary key, "queue" varchar(255) not null, "payload" text not null,
    "attempts" smallint not null, "reserved_at" integer null, "available_at" integer not null, "created_at" integer not null);
create index "jobs_queue_index" on "jobs" ("queue");
"""


def laravel_fail(conninfo, uuid, exception, minutes_ago, queue="default", connection="database"):
    """A row as Laravel's DatabaseFailedJobProvider logs it (failed_at in UTC)."""
    payload = json.dumps({"uuid": uuid, "displayName": "App\\Jobs\\SendMail", "job": "Illuminate\\Queue\\CallQueuedHandler@call", "attempts": 3})
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at)"
            " VALUES (%s, %s, %s, %s, %s, (now() AT TIME ZONE 'UTC') - make_interval(mins => %s))",
            (uuid, connection, queue, payload, exception, minutes_ago),
        )


@pytest.fixture
def laravel_db(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(LARAVEL_SCHEMA)
    laravel_fail(empty_database, "u-due", "PDOException: server has gone away in /app/vendor/Connection.php:123", 10, queue="mail")
    laravel_fail(empty_database, "u-fresh", "GuzzleHttp\\Exception\\ConnectException: timed out", 0)
    laravel_fail(empty_database, "u-invalid", "Illuminate\\Validation\\ValidationException: The email must be valid", 10)
    laravel_fail(empty_database, "u-redis", "RedisException: down", 10, connection="redis")
    return empty_database


LARAVEL = {"backend": "laravel", "max_attempts": 2, "never_retry": ["ValidationException"], "backoff": {"base": 60, "jitter": 0}}


def laravel_rows(conninfo):
    with psycopg.connect(conninfo) as conn:
        failed = [row[0] for row in conn.execute("SELECT uuid FROM failed_jobs ORDER BY id").fetchall()]
        jobs = conn.execute(
            "SELECT queue, payload, attempts, reserved_at, available_at - extract(epoch FROM now())::int, created_at FROM jobs ORDER BY id"
        ).fetchall()
    return failed, jobs


def test_laravel_check_mode_lists_requeue_wait_and_dead_and_changes_nothing(laravel_db, host_settings):
    result = retry(host_settings, check=True, conninfo=laravel_db, **LARAVEL)
    assert result["changed"] is True
    assert [entry["ref"] for entry in result["requeued"]] == ["public.failed_jobs:u-due"]
    assert [entry["ref"] for entry in result["waiting"]] == ["public.failed_jobs:u-fresh"]
    assert 55 <= result["waiting"][0]["delay"] <= 61  # base 60 s after failed_at (stored to the second)
    assert [entry["ref"] for entry in result["dead"]] == ["public.failed_jobs:u-invalid"]
    assert laravel_rows(laravel_db) == (["u-due", "u-fresh", "u-invalid", "u-redis"], [])
    assert not os.path.exists(host_settings.database)


def test_laravel_due_jobs_go_back_to_jobs_as_queue_retry_does(laravel_db, host_settings, inbox):
    result = retry(host_settings, conninfo=laravel_db, **LARAVEL)
    assert [entry["ref"] for entry in result["requeued"]] == ["public.failed_jobs:u-due"]
    assert [entry["ref"] for entry in result["dead"]] == ["public.failed_jobs:u-invalid"]
    failed, jobs = laravel_rows(laravel_db)
    # Moved: out of failed_jobs, into jobs with attempts 0, available now, its queue and payload.
    assert failed == ["u-fresh", "u-invalid", "u-redis"]
    assert len(jobs) == 1
    queue, payload, attempts, reserved_at, available_in, created_at = jobs[0]
    assert (queue, attempts, reserved_at) == ("mail", 0, None)
    assert -5 <= available_in <= 0 and created_at > 0
    assert json.loads(payload)["uuid"] == "u-due" and json.loads(payload)["attempts"] == 0
    # The dead job stays in failed_jobs, is a dead letter and raised an alert.
    assert result["dead_total"] == 1
    assert result["alert"]["action"] == "trigger"
    ledger = Ledger(host_settings.database)
    letters = ledger.dead_letters(job="retry-app")
    ledger.close()
    assert [(letter["source"], letter["ref"]) for letter in letters] == [("laravel", "public.failed_jobs:u-invalid")]

    # The retried job fails again in Laravel (same uuid): its second attempt was its last.
    with psycopg.connect(laravel_db, autocommit=True) as conn:
        conn.execute("DELETE FROM jobs")
    laravel_fail(laravel_db, "u-due", "PDOException: server has gone away", 5)
    again = retry(host_settings, conninfo=laravel_db, **LARAVEL)
    assert [entry["ref"] for entry in again["dead"]] == ["public.failed_jobs:u-due"]
    assert "used all 2 attempts" in again["dead"][0]["reason"]
    assert again["dead_total"] == 2
    assert laravel_rows(laravel_db)[0] == ["u-fresh", "u-invalid", "u-redis", "u-due"]
    # Dead jobs are left alone; the fresh one still waits for its backoff.
    third = retry(host_settings, conninfo=laravel_db, **LARAVEL)
    assert third["changed"] is False and third["dead"] == [] and len(third["waiting"]) == 1
    assert third["dead_total"] == 2


def test_laravel_counts_of_jobs_that_stopped_failing_are_forgotten(laravel_db, host_settings):
    retry(host_settings, conninfo=laravel_db, **LARAVEL)
    ledger = Ledger(host_settings.database)
    counted = dict(ledger.db.execute("SELECT item, dead FROM job_retry_counts").fetchall())
    assert counted == {"u-due": 0, "u-fresh": 0, "u-invalid": 1}
    # u-due was requeued and has not failed again for 31 days: it succeeded, its count goes;
    # u-fresh still waits in failed_jobs (each run renews its row), u-invalid is dead: both stay
    ledger.db.execute("UPDATE job_retry_counts SET updated = updated - 31 * 86400")
    ledger.close()
    retry(host_settings, conninfo=laravel_db, **LARAVEL)
    ledger = Ledger(host_settings.database)
    assert dict(ledger.db.execute("SELECT item, dead FROM job_retry_counts").fetchall()) == {"u-fresh": 0, "u-invalid": 1}
    ledger.close()


def test_laravel_backoff_is_drawn_once_and_kept(laravel_db, host_settings):
    args = {**LARAVEL, "backoff": {"base": 600, "jitter": 50}}
    first = retry(host_settings, conninfo=laravel_db, **args)
    second = retry(host_settings, conninfo=laravel_db, **args)
    waits = [entry["delay"] for entry in first["waiting"]], [entry["delay"] for entry in second["waiting"]]
    assert len(waits[0]) == 2
    for before, after in zip(*waits, strict=True):
        assert 0 <= before - after <= 5  # the same due time, a little closer


def test_laravel_dead_letters_show_in_caretaker_status(laravel_db, caretaker_host):
    caretaker_host.add_job("retry-laravel", kind="job_retry", args={"conninfo": laravel_db, **LARAVEL})
    code, report = caretaker_host.run("retry-laravel")
    assert code == 0, report
    status = caretaker_host.status()
    assert [letter["ref"] for letter in status["dead_letters"] if letter["job"] == "retry-laravel"] == ["public.failed_jobs:u-invalid"]


@pytest.mark.parametrize(
    ("statement", "change", "field", "message"),
    [
        (None, {"failed_table": "failed"}, "laravel.failed_table", "table public.failed does not exist"),
        (None, {"jobs_table": "queue_jobs"}, "laravel.jobs_table", "table public.queue_jobs does not exist"),
        ("ALTER TABLE failed_jobs DROP COLUMN exception", {}, "laravel.failed_table", "column 'exception' does not exist in table public.failed_jobs"),
        ("ALTER TABLE jobs DROP COLUMN reserved_at", {}, "laravel.jobs_table", "column 'reserved_at' does not exist in table public.jobs"),
        (None, {"schema": 'public"; DROP TABLE jobs; --'}, "laravel.failed_table", "does not exist"),
        (None, {"failed_table": "failed_jobs' OR '1'='1"}, "laravel.failed_table", "does not exist"),
    ],
)
def test_laravel_bad_input_names_the_field_and_changes_nothing(laravel_db, host_settings, statement, change, field, message):
    if statement:
        with psycopg.connect(laravel_db, autocommit=True) as conn:
            conn.execute(statement)
    with pytest.raises(ConfigError) as raised:
        retry(host_settings, conninfo=laravel_db, laravel=change, **LARAVEL)
    assert raised.value.field == field
    assert message in str(raised.value)
    with psycopg.connect(laravel_db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM failed_jobs").fetchone()[0] == 4


def test_laravel_connection_value_is_just_a_value(laravel_db, host_settings):
    result = retry(host_settings, conninfo=laravel_db, laravel={"connection": "database' OR '1'='1"}, **LARAVEL)
    assert result["changed"] is False and result["requeued"] == [] and result["waiting"] == []
    assert laravel_rows(laravel_db)[0] == ["u-due", "u-fresh", "u-invalid", "u-redis"]
