"""The ledger's schema is applied once per version, and an older ledger is brought up to date."""

import sqlite3

from caretaker.alerting import notify
from caretaker.foundation.ledger import SCHEMA_VERSION, Ledger


def test_a_version_1_ledger_gains_the_alert_spool(tmp_path):
    path = tmp_path / "state.db"
    Ledger(str(path)).close()
    with sqlite3.connect(path) as db:  # as version 1 left it: no spool tables, one run recorded
        db.execute("DROP TABLE alert_spool")
        db.execute("DROP TABLE alert_sent")
        db.execute("INSERT INTO runs (run_id, attempt, job, kind, started, status) VALUES ('kept', 1, 'j', 'noop', 0, 'ok')")
        db.execute("PRAGMA user_version=1")
    ledger = Ledger(str(path))
    try:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert notify.spooled(ledger) == {}
        ledger.db.execute("INSERT INTO alert_spool (route, created, payload) VALUES ('ops', 0, '{}')")
        assert notify.spooled(ledger) == {"ops": 1}
        assert ledger.db.execute("SELECT run_id FROM runs").fetchall()[0][0] == "kept"
    finally:
        ledger.close()


def test_a_version_2_ledger_gains_the_deploy_journal(tmp_path):
    path = tmp_path / "state.db"
    Ledger(str(path)).close()
    with sqlite3.connect(path) as db:  # as version 2 left it: no deploy tables
        for table in ("deploys", "deploy_releases", "deploy_locks"):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version=2")
    ledger = Ledger(str(path))
    try:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        ledger.db.execute("INSERT INTO deploys (deploy_id, app, action, started, outcome) VALUES ('d', 'a', 'deploy', 0, 'ok')")
        assert ledger.db.execute("SELECT count(*) FROM deploy_locks").fetchone()[0] == 0
    finally:
        ledger.close()


def test_a_version_2_ledger_gains_check_state_and_since_moves_only_on_change(tmp_path):
    path = tmp_path / "state.db"
    Ledger(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE check_state")
        db.execute("PRAGMA user_version=2")
    ledger = Ledger(str(path))
    try:
        ledger.record_check("web", "health_check", "critical", "cron.service: inactive", [])
        first = ledger.check_states()["web"]
        ledger.db.execute("UPDATE check_state SET since = since - 100")
        ledger.record_check("web", "health_check", "critical", "cron.service: failed", [])
        again = ledger.check_states()["web"]
        assert again["since"] == first["since"] - 100 and again["summary"] == "cron.service: failed"
        ledger.record_check("web", "health_check", "ok", "1 check(s) ok", [])
        assert ledger.check_states()["web"]["since"] > first["since"] - 1
    finally:
        ledger.close()
