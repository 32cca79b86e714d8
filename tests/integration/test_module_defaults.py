"""Every module family under the README's module_defaults for the action group, for real.

The play sets `module_defaults: {group/caretaker.ops.caretaker: {etc: ...}}` as the README
shows (the README's own block, with a temporary directory for /etc/caretaker), then runs the
modules against real services: the test PostgreSQL, a directory store, a supervisord, files.
"""

import pathlib
import re
import sqlite3
import sys

import psycopg
import yaml

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
RUNTIME_ACTIONS = pathlib.Path(__file__).resolve().parents[2] / "meta" / "runtime.yml"
MODULES = pathlib.Path(__file__).resolve().parents[2] / "plugins" / "modules"


def readme_module_defaults(etc):
    """The README's module_defaults block, its /etc/caretaker replaced by etc."""
    block = re.search(r"```yaml\n(\s*module_defaults:\n.*?)```", README.read_text(), re.S).group(1)
    defaults = yaml.safe_load(block)["module_defaults"]
    assert defaults == {"group/caretaker.ops.caretaker": {"etc": "/etc/caretaker"}}, defaults
    return {"group/caretaker.ops.caretaker": {"etc": str(etc)}}


def test_every_module_is_in_the_action_group():
    group = yaml.safe_load(RUNTIME_ACTIONS.read_text())["action_groups"]["caretaker"]
    assert sorted(group) == sorted(path.stem for path in MODULES.glob("*.py"))


def test_every_module_family_runs_under_the_readme_module_defaults(postgres, pg_database, supervisord, pki, caretaker_host,
                                                                   playbook, tmp_path):
    caretaker_host.add_job("nightly", kind="noop", schedule="17 2 * * *")
    with psycopg.connect(postgres.conninfo(pg_database), autocommit=True) as conn:
        conn.execute("CREATE TABLE sessions (id int PRIMARY KEY, seen timestamptz)")
        conn.execute("CREATE INDEX ON sessions (seen)")
        conn.execute("INSERT INTO sessions SELECT g, now() - (g || ' days')::interval FROM generate_series(1, 40) g")
        conn.execute("CREATE TABLE jobs (id int PRIMARY KEY, status text, attempts int, last_error text, run_at timestamptz)")
        conn.execute("INSERT INTO jobs VALUES (1, 'failed', 1, 'Timeout', NULL)")
    supervisord.add_program("web", f"{sys.executable} -c 'import time; time.sleep(3600)'", startsecs=0)
    supervisord.start()
    junk = tmp_path / "junk"
    junk.mkdir()
    log = tmp_path / "app.log"
    log.write_text("ok\nERROR boom\n")
    root = pki.root()
    leaf, _key = pki.leaf(root, "shop.example.org")
    cert = pki.pem("leaf.pem", leaf, root.cert)
    connection = postgres.args(pg_database)  # database, pg_host, pg_port, pg_user, pg_password: the same for every kind
    store = {"directory": str(tmp_path / "backups")}
    tasks = [
        ("job_info", {}),
        ("health_check", {"probes": [{"type": "postgres", "name": "db", **connection}]}),
        ("cert_check", {"files": [str(cert)], "ca_file": str(pki.pem("root.pem", root.cert))}),
        ("log_alert", {"path": str(log), "rules": [{"name": "errors", "pattern": "ERROR", "critical": 1}]}),
        ("file_cleanup", {"paths": [str(junk)], "age": "1d"}),
        ("supervisor_info", {"server_url": supervisord.url}),
        ("pg_backup", {**connection, **store}),
        ("backup_info", {"database": pg_database, **store}),
        ("backup_prune", {"database": pg_database, "keep_last": 1, **store}),
        ("pg_restore", {**connection, "target": pg_database + "_restored", **store}),
        ("pg_purge", {**connection, "tables": [{"name": "sessions", "time_column": "seen", "older_than": "30d"}]}),
        ("job_retry", {**connection, "backend": "postgres", "table": {"name": "jobs"}}),
    ]
    plays = [{
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": readme_module_defaults(caretaker_host.etc),
        "tasks": [{"name": name, f"caretaker.ops.{name}": args} for name, args in tasks],
    }]
    run = playbook.run(plays)
    assert run.code == 0, run.failures or run.stderr
    results = dict(zip([name for name, _args in tasks], run.results, strict=True))
    # etc reached the modules: job_info read the temporary host's jobs, the stateful ones its ledger
    assert [job["name"] for job in results["job_info"]["jobs"]] == ["nightly"]
    assert [(f["name"], f["status"]) for f in results["health_check"]["findings"]] == [("db", "ok")], results["health_check"]
    assert results["supervisor_info"]["programs"][0]["name"] == "web"
    assert results["backup_info"]["latest"] == results["pg_backup"]["backup_id"]
    assert results["pg_restore"]["backup_id"] == results["pg_backup"]["backup_id"]
    assert results["pg_purge"]["rows_deleted"] == 11
    assert [job["ref"] for job in results["job_retry"]["requeued"]] == ["public.jobs:1"]
    with sqlite3.connect(caretaker_host.state / "state.db") as db:
        assert db.execute("SELECT count(*) FROM log_cursor").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM purge_totals").fetchone()[0] >= 1
