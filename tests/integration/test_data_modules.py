"""caretaker.ops.pg_purge and caretaker.ops.job_retry through Ansible: check mode, then apply, then again."""

import psycopg


def test_pg_purge_module_check_apply_check(empty_database, run_module, caretaker_host, monkeypatch):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE sessions (id int PRIMARY KEY, seen timestamptz)")
        conn.execute("CREATE INDEX ON sessions (seen)")
        conn.execute("INSERT INTO sessions SELECT g, now() - (g || ' days')::interval FROM generate_series(1, 40) g")
    args = {"conninfo": empty_database, "tables": [{"name": "sessions", "time_column": "seen", "older_than": "30d", "batch_size": 4}]}
    # The module reads /etc/caretaker unless CARETAKER_ETC moves it: keep the cursor in the tmp host.
    monkeypatch.setenv("CARETAKER_ETC", str(caretaker_host.etc))
    # Rows 30..40 days old: the one inserted exactly 30 days back is older by the time the purge runs.
    preview = run_module("pg_purge", args, check=True)
    assert preview["changed"] is True and preview["would_delete"] == 11
    applied = run_module("pg_purge", args)
    assert applied["changed"] is True and applied["rows_deleted"] == 11 and applied["batches"] == 3
    assert run_module("pg_purge", args, check=True)["changed"] is False
    assert run_module("pg_purge", args)["changed"] is False
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 29


def test_pg_purge_module_bad_input_hides_conninfo(run_module):
    result = run_module(
        "pg_purge", {"conninfo": "host=x password=hunter2", "tables": [{"name": "t", "time_column": "c", "older_than": "7d", "batch_size": "lots"}]}
    )
    assert result["failed"] is True
    assert "batch_size" in result["msg"]
    assert "hunter2" not in str(result)


def test_job_retry_module_check_mode_changes_nothing(empty_database, run_module):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE jobs (id int PRIMARY KEY, status text, attempts int, last_error text, run_at timestamptz)")
        conn.execute("INSERT INTO jobs VALUES (1, 'failed', 1, 'Timeout', NULL), (2, 'failed', 1, 'ValidationError', NULL)")
    args = {"backend": "postgres", "conninfo": empty_database, "table": {"name": "jobs"}, "never_retry": ["^ValidationError"]}
    preview = run_module("job_retry", args, check=True)
    assert preview["changed"] is True
    assert [job["ref"] for job in preview["requeued"]] == ["public.jobs:1"]
    assert [job["ref"] for job in preview["dead"]] == ["public.jobs:2"]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT array_agg(status ORDER BY id) FROM jobs").fetchone()[0] == ["failed", "failed"]
