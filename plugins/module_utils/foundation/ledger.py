"""The host's SQLite state: every run and attempt, per-job totals, dead letters and alert state."""

from __future__ import annotations

import json
import os
import sqlite3
import time

SCHEMA_VERSION = 4  # 2: every table of every feature is here, applied once per version; 3: deploys; 4: check_state

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    output_tail TEXT,
    pid INTEGER,
    PRIMARY KEY (run_id, attempt)
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, started);
CREATE TABLE IF NOT EXISTS job_stats (
    job TEXT PRIMARY KEY,
    last_run REAL,
    last_status TEXT,
    last_exit_code INTEGER,
    last_duration REAL,
    last_success REAL,
    failures_total INTEGER NOT NULL DEFAULT 0,
    runs_total INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    job TEXT NOT NULL,
    ref TEXT NOT NULL,
    created REAL NOT NULL,
    error TEXT,
    acked REAL
);
CREATE TABLE IF NOT EXISTS alert_spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    created REAL NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS alert_sent (route TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alert_sent_by_route ON alert_sent (route, ts);
CREATE TABLE IF NOT EXISTS alert_state (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    consecutive INTEGER NOT NULL DEFAULT 0,
    first_seen REAL,
    alerted INTEGER NOT NULL DEFAULT 0,
    last_sent REAL,
    summary TEXT
);
-- per-check alert state beside alert_state (alerts)
CREATE TABLE IF NOT EXISTS alert_tracking (
    key TEXT PRIMARY KEY,
    stage TEXT,
    flips TEXT NOT NULL DEFAULT '[]',
    flapping INTEGER NOT NULL DEFAULT 0,
    stable_runs INTEGER NOT NULL DEFAULT 0,
    alerted_severity TEXT
);
-- where each log_alert job stopped reading, and its counts per rule (logscan)
CREATE TABLE IF NOT EXISTS log_cursor (
    consumer TEXT NOT NULL,
    path TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    head TEXT,
    offset INTEGER NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (consumer, path)
);
CREATE TABLE IF NOT EXISTS log_counts (
    consumer TEXT NOT NULL,
    path TEXT NOT NULL,
    rule TEXT NOT NULL,
    ts REAL NOT NULL,
    lines INTEGER NOT NULL,
    matches INTEGER NOT NULL,
    samples TEXT
);
CREATE INDEX IF NOT EXISTS log_counts_by_rule ON log_counts (consumer, path, rule, ts);
-- pg_purge's resumable cursors and totals
CREATE TABLE IF NOT EXISTS purge_cursors (
    key TEXT PRIMARY KEY,
    cutoff TEXT NOT NULL,
    position TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS purge_totals (
    job TEXT NOT NULL,
    target TEXT NOT NULL,
    rows_deleted INTEGER NOT NULL DEFAULT 0,
    rows_archived INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    last_seconds REAL,
    last_budget_stopped INTEGER,
    PRIMARY KEY (job, target)
);
-- job_retry's retry counts for Laravel's failed_jobs, which keeps none
CREATE TABLE IF NOT EXISTS job_retry_counts (
    job TEXT NOT NULL,
    ref TEXT NOT NULL,
    item TEXT NOT NULL,
    retries INTEGER NOT NULL DEFAULT 0,
    due REAL,
    due_attempts INTEGER,
    dead INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    PRIMARY KEY (job, ref)
);
-- restore drills (pg_backup)
CREATE TABLE IF NOT EXISTS backup_drills (database TEXT, backup_id TEXT, ok INTEGER, restore_seconds REAL, checked_at TEXT, error TEXT);
-- deploys: the journal (one row per deploy, app and action on each host), releases in the
-- order they were prepared, and the per-app deploy lock
CREATE TABLE IF NOT EXISTS deploys (
    deploy_id TEXT NOT NULL,
    app TEXT NOT NULL,
    action TEXT NOT NULL,
    release TEXT,
    previous TEXT,
    started REAL NOT NULL,
    ended REAL,
    outcome TEXT NOT NULL,
    schema_before TEXT,
    schema_after TEXT,
    backup_id TEXT,
    detail TEXT,
    PRIMARY KEY (deploy_id, app, action)
);
CREATE INDEX IF NOT EXISTS deploys_by_app ON deploys (app, started);
CREATE TABLE IF NOT EXISTS deploy_releases (
    app TEXT NOT NULL,
    release TEXT NOT NULL,
    source TEXT NOT NULL,
    digest TEXT,
    prepared REAL NOT NULL,
    PRIMARY KEY (app, release)
);
CREATE TABLE IF NOT EXISTS deploy_locks (
    app TEXT PRIMARY KEY,
    deploy_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    controller TEXT NOT NULL,
    release TEXT,
    since REAL NOT NULL,
    ttl REAL NOT NULL
);
-- each check job's own state (ok, warning, critical, unknown), since when, and its last findings
CREATE TABLE IF NOT EXISTS check_state (
    job TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT,
    since REAL NOT NULL,
    observed REAL NOT NULL,
    findings TEXT NOT NULL DEFAULT '[]'
);
"""

FINAL_FAILURES = ("failed", "timeout", "dead", "killed")


class Ledger:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self):
        self.db.close()

    # runs -----------------------------------------------------------------
    def start_attempt(self, run_id, attempt, job, kind, pid):
        self.db.execute(
            "INSERT INTO runs (run_id, attempt, job, kind, started, status, pid) VALUES (?, ?, ?, ?, ?, 'running', ?)",
            (run_id, attempt, job, kind, time.time(), pid),
        )

    def end_attempt(self, run_id, attempt, status, exit_code, error, output_tail):
        self.db.execute(
            "UPDATE runs SET ended = ?, status = ?, exit_code = ?, error = ?, output_tail = ? WHERE run_id = ? AND attempt = ?",
            (time.time(), status, exit_code, error, output_tail, run_id, attempt),
        )

    def mark_abandoned(self, job):
        """Runs left 'running' by a runner that was killed: they failed, say so."""
        rows = self.db.execute("SELECT run_id, attempt FROM runs WHERE job = ? AND status = 'running'", (job,)).fetchall()
        for row in rows:
            self.end_attempt(row["run_id"], row["attempt"], "killed", None, "the runner was killed before the run ended", None)
        return len(rows)

    def record_result(self, job, started, status, exit_code):
        now = time.time()
        ok = status == "ok"
        self.db.execute(
            """INSERT INTO job_stats (job, last_run, last_status, last_exit_code, last_duration, last_success,
                                      failures_total, runs_total)
               VALUES (?, ?, ?, ?, ?, ?, ?, 1)
               ON CONFLICT (job) DO UPDATE SET
                   last_run = excluded.last_run, last_status = excluded.last_status,
                   last_exit_code = excluded.last_exit_code, last_duration = excluded.last_duration,
                   last_success = COALESCE(excluded.last_success, job_stats.last_success),
                   failures_total = job_stats.failures_total + excluded.failures_total,
                   runs_total = job_stats.runs_total + 1""",
            (job, started, status, exit_code, now - started, now if ok else None, 0 if ok else 1),
        )

    def job_stats(self):
        return {row["job"]: dict(row) for row in self.db.execute("SELECT * FROM job_stats")}

    def recent_runs(self, job, limit=20):
        rows = self.db.execute(
            "SELECT * FROM runs WHERE job = ? ORDER BY started DESC, attempt DESC LIMIT ?", (job, limit)
        ).fetchall()
        return [dict(row) for row in rows]

    # check state -----------------------------------------------------------
    def record_check(self, job, kind, status, summary, findings):
        """A check job's outcome; `since` moves only when the status changes."""
        now = time.time()
        self.db.execute(
            """INSERT INTO check_state (job, kind, status, summary, since, observed, findings)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (job) DO UPDATE SET
                   since = CASE WHEN check_state.status = excluded.status THEN check_state.since ELSE excluded.since END,
                   kind = excluded.kind, status = excluded.status, summary = excluded.summary,
                   observed = excluded.observed, findings = excluded.findings""",
            (job, kind, status, summary, now, now, json.dumps(findings, default=str)),
        )

    def check_states(self):
        rows = self.db.execute("SELECT * FROM check_state").fetchall()
        return {row["job"]: dict(row, findings=json.loads(row["findings"])) for row in rows}

    def drills(self):
        return [dict(row) for row in self.db.execute("SELECT * FROM backup_drills ORDER BY checked_at")]

    # dead letters -----------------------------------------------------------
    def add_dead_letter(self, source, job, ref, error):
        self.db.execute(
            "INSERT INTO dead_letters (source, job, ref, created, error) VALUES (?, ?, ?, ?, ?)",
            (source, job, ref, time.time(), error),
        )

    def dead_letters(self, job=None, include_acked=False):
        sql = "SELECT * FROM dead_letters WHERE 1=1"
        params = []
        if job:
            sql += " AND job = ?"
            params.append(job)
        if not include_acked:
            sql += " AND acked IS NULL"
        return [dict(row) for row in self.db.execute(sql + " ORDER BY created", params)]

    def ack_dead_letters(self, job):
        cursor = self.db.execute("UPDATE dead_letters SET acked = ? WHERE job = ? AND acked IS NULL", (time.time(), job))
        return cursor.rowcount

    # alert state (alerting/alerts.py) ------------------------------------------
    def alert_state(self, key):
        row = self.db.execute("SELECT * FROM alert_state WHERE key = ?", (key,)).fetchone()
        return dict(row) if row else None

    def alert_tracking(self, key):
        row = self.db.execute("SELECT * FROM alert_tracking WHERE key = ?", (key,)).fetchone()
        return dict(row) if row else None

    def save_alert_state(self, key, state, track, summary):
        """One observation's outcome: the state and the tracking row, `flips` already JSON."""
        self.db.execute(
            """INSERT INTO alert_state (key, status, consecutive, first_seen, alerted, last_sent, summary)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET status = excluded.status, consecutive = excluded.consecutive,
                   first_seen = excluded.first_seen, alerted = excluded.alerted,
                   last_sent = excluded.last_sent, summary = excluded.summary""",
            (key, state["status"], state["consecutive"], state["first_seen"], state["alerted"], state["last_sent"], summary),
        )
        self.db.execute(
            """INSERT INTO alert_tracking (key, stage, flips, flapping, stable_runs, alerted_severity)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET stage = excluded.stage, flips = excluded.flips, flapping = excluded.flapping,
                   stable_runs = excluded.stable_runs, alerted_severity = excluded.alerted_severity""",
            (key, track["stage"], track["flips"], track["flapping"], track["stable_runs"], track["alerted_severity"]),
        )

    # alert spool (alerting/notify.py) ------------------------------------------
    def spool_alert(self, route, payload):
        self.db.execute("INSERT INTO alert_spool (route, created, payload) VALUES (?, ?, ?)", (route, time.time(), payload))

    def spooled_routes(self):
        return [row[0] for row in self.db.execute("SELECT DISTINCT route FROM alert_spool ORDER BY route")]

    def spooled_alerts(self, route=None):
        """Undelivered alerts of one route, oldest first; without a route, the count per route."""
        if route is None:
            return {row[0]: row[1] for row in self.db.execute("SELECT route, COUNT(*) FROM alert_spool GROUP BY route")}
        return [dict(row) for row in self.db.execute("SELECT * FROM alert_spool WHERE route = ? ORDER BY id", (route,))]

    def unspool_alert(self, spool_id, route=None):
        """Drop a spooled alert; with its route, count it as sent for the route's rate limit."""
        self.db.execute("DELETE FROM alert_spool WHERE id = ?", (spool_id,))
        if route is not None:
            self.db.execute("INSERT INTO alert_sent (route, ts) VALUES (?, ?)", (route, time.time()))

    def spool_failed(self, spool_id, error):
        self.db.execute("UPDATE alert_spool SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, spool_id))

    def sent_since(self, route, since):
        return self.db.execute("SELECT COUNT(*) FROM alert_sent WHERE route = ? AND ts > ?", (route, since)).fetchone()[0]

    def forget_sent(self, before):
        self.db.execute("DELETE FROM alert_sent WHERE ts < ?", (before,))

    # pg_purge (data/pg_purge.py) ---------------------------------------------
    def purge_cursor(self, key):
        row = self.db.execute("SELECT cutoff, position FROM purge_cursors WHERE key = ?", (key,)).fetchone()
        return dict(row) if row else None

    def save_purge_cursor(self, key, cutoff, position):
        self.db.execute(
            "INSERT INTO purge_cursors (key, cutoff, position, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET cutoff = excluded.cutoff, position = excluded.position, updated = excluded.updated",
            (key, cutoff, position, time.time()),
        )

    def drop_purge_cursor(self, key):
        self.db.execute("DELETE FROM purge_cursors WHERE key = ?", (key,))

    def add_purge_totals(self, job, target, stats, budget_stopped):
        self.db.execute(
            """INSERT INTO purge_totals (job, target, rows_deleted, rows_archived, batches, last_seconds, last_budget_stopped)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (job, target) DO UPDATE SET
                   rows_deleted = purge_totals.rows_deleted + excluded.rows_deleted,
                   rows_archived = purge_totals.rows_archived + excluded.rows_archived,
                   batches = purge_totals.batches + excluded.batches,
                   last_seconds = excluded.last_seconds, last_budget_stopped = excluded.last_budget_stopped""",
            (job, target, stats["rows_deleted"], stats["rows_archived"], stats["batches"], stats["seconds"], int(budget_stopped)),
        )

    def purge_totals(self, job):
        return [dict(row) for row in self.db.execute("SELECT * FROM purge_totals WHERE job = ? ORDER BY target", (job,))]

    # job_retry (data/job_retry.py) -------------------------------------------
    def retry_counts(self, job, ref_prefix):
        rows = self.db.execute("SELECT * FROM job_retry_counts WHERE job = ? AND ref LIKE ?", (job, ref_prefix + "%"))
        return {row["item"]: dict(row) for row in rows}

    def save_retry_count(self, job, ref, item, retries, due, due_attempts, dead):
        self.db.execute(
            "INSERT INTO job_retry_counts (job, ref, item, retries, due, due_attempts, dead, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job, ref) DO UPDATE SET retries = excluded.retries, due = excluded.due, "
            "due_attempts = excluded.due_attempts, dead = excluded.dead, updated = excluded.updated",
            (job, ref, item, retries, due, due_attempts, dead, time.time()),
        )

    def forget_retry_counts(self, job, ref_prefix, unseen_for):
        """Counts of live (not dead) jobs not seen for `unseen_for` seconds."""
        self.db.execute(
            "DELETE FROM job_retry_counts WHERE job = ? AND ref LIKE ? AND dead = 0 AND updated < ?",
            (job, ref_prefix + "%", time.time() - unseen_for),
        )

    # restore drills (backup/pg_backup.py) --------------------------------------
    def record_drill(self, database, backup_id, ok, restore_seconds, checked_at, error=None):
        self.db.execute(
            "INSERT INTO backup_drills VALUES (?, ?, ?, ?, ?, ?)", (database, backup_id, int(ok), restore_seconds, checked_at, error)
        )

    # deploys: the journal, prepared releases, the deploy lock (deploy/) -----------------
    def record_deploy(self, deploy_id, app, action, **fields):
        """Insert or update the journal row of (deploy_id, app, action) with fields."""
        if self.deploy_row(deploy_id, app, action) is None:
            fields.setdefault("started", time.time())
            fields.setdefault("outcome", "running")
            columns = ["deploy_id", "app", "action", *fields]
            # column names come from the engine's callers, never from input; values are parameters
            self.db.execute(
                f"INSERT INTO deploys ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608
                (deploy_id, app, action, *fields.values()),
            )
        elif fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            self.db.execute(
                f"UPDATE deploys SET {assignments} WHERE deploy_id = ? AND app = ? AND action = ?",  # noqa: S608
                (*fields.values(), deploy_id, app, action),
            )

    def deploy_row(self, deploy_id, app, action):
        found = self.db.execute(
            "SELECT * FROM deploys WHERE deploy_id = ? AND app = ? AND action = ?", (deploy_id, app, action)
        ).fetchone()
        return dict(found) if found else None

    def deploy_history(self, app, limit=20):
        rows = self.db.execute("SELECT * FROM deploys WHERE app = ? ORDER BY started DESC, rowid DESC LIMIT ?", (app, limit))
        return [dict(row) for row in rows]

    def rollback_target(self, app, current):
        """The release the current one replaced when it was last put in place, or None."""
        found = self.db.execute(
            """SELECT previous FROM deploys
                WHERE app = ? AND release = ? AND action IN ('deploy', 'rollback') AND outcome = 'ok'
                ORDER BY started DESC, rowid DESC LIMIT 1""",
            (app, current),
        ).fetchone()
        return found["previous"] if found else None

    def deployed_apps(self):
        return [row["app"] for row in self.db.execute("SELECT DISTINCT app FROM deploys ORDER BY app")]

    def deployed_release(self, app):
        """(release, since) the journal says serves app now: the last switch, or what a revert went back to."""
        found = self.db.execute(
            """SELECT release, previous, outcome, started FROM deploys
                WHERE app = ? AND action IN ('deploy', 'rollback') AND outcome IN ('switched', 'ok', 'rolled_back')
                ORDER BY started DESC, rowid DESC LIMIT 1""",
            (app,),
        ).fetchone()
        if found is None:
            return None, None
        return (found["previous"] if found["outcome"] == "rolled_back" else found["release"]), found["started"]

    def last_switch(self, app):
        """The newest deploy or rollback row of app on this host (what it tried to put in place), or None."""
        found = self.db.execute(
            "SELECT * FROM deploys WHERE app = ? AND action IN ('deploy', 'rollback') ORDER BY started DESC, rowid DESC LIMIT 1",
            (app,),
        ).fetchone()
        return dict(found) if found else None

    def add_release(self, app, release, source, digest):
        self.db.execute(
            "INSERT OR REPLACE INTO deploy_releases (app, release, source, digest, prepared) VALUES (?, ?, ?, ?, ?)",
            (app, release, source, digest, time.time()),
        )

    def prepared_release(self, app, release):
        found = self.db.execute("SELECT * FROM deploy_releases WHERE app = ? AND release = ?", (app, release)).fetchone()
        return dict(found) if found else None

    def prepared_releases(self, app):
        """Releases of app, oldest prepared first."""
        rows = self.db.execute("SELECT release FROM deploy_releases WHERE app = ? ORDER BY prepared, rowid", (app,))
        return [row["release"] for row in rows]

    def forget_release(self, app, release):
        self.db.execute("DELETE FROM deploy_releases WHERE app = ? AND release = ?", (app, release))

    def deploy_lock(self, app):
        found = self.db.execute("SELECT * FROM deploy_locks WHERE app = ?", (app,)).fetchone()
        return dict(found) if found else None

    def take_deploy_lock(self, app, deploy_id, holder, controller, release, ttl, may_break):
        """In one transaction: (True, None) taken; (False, None) this deploy holds it already;
        (True, old) old was expired and may_break(old) allowed breaking it. may_break raises to refuse."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            held = self.deploy_lock(app)
            if held and held["deploy_id"] == deploy_id:
                self.db.execute("COMMIT")
                return False, None
            if held:
                may_break(held, now)
                self.db.execute("DELETE FROM deploy_locks WHERE app = ?", (app,))
            self.db.execute(
                "INSERT INTO deploy_locks (app, deploy_id, holder, controller, release, since, ttl) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (app, deploy_id, holder, controller, release, now, ttl),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return True, held

    def drop_deploy_lock(self, app, deploy_id):
        """Drop the lock if deploy_id holds it; another deploy's lock is left alone."""
        return self.db.execute("DELETE FROM deploy_locks WHERE app = ? AND deploy_id = ?", (app, deploy_id)).rowcount > 0

    # log_alert (checks/log_alert.py) -------------------------------------------
    def log_cursor(self, consumer, path):
        row = self.db.execute("SELECT * FROM log_cursor WHERE consumer = ? AND path = ?", (consumer, path)).fetchone()
        return dict(row) if row else None

    def save_log_scan(self, consumer, path, cursor, counts, now, keep_since):
        """Where a scan stopped and its counts per rule, in one transaction; counts older than keep_since go."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO log_cursor (consumer, path, device, inode, head, offset, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (consumer, path, cursor["device"], cursor["inode"], cursor["head"], cursor["offset"], now),
            )
            self.db.execute("DELETE FROM log_counts WHERE consumer = ? AND path = ? AND ts < ?", (consumer, path, keep_since))
            for rule, lines, matches, samples in counts:
                self.db.execute(
                    "INSERT INTO log_counts (consumer, path, rule, ts, lines, matches, samples) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (consumer, path, rule, now, lines, matches, samples),
                )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def log_window_totals(self, consumer, path, rule, since, until):
        """(scans, lines, matches) of one rule between two times."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(lines), 0), COALESCE(SUM(matches), 0) FROM log_counts "
            "WHERE consumer = ? AND path = ? AND rule = ? AND ts > ? AND ts <= ?",
            (consumer, path, rule, since, until),
        ).fetchone()
        return row[0], row[1], row[2]

    def log_recent_samples(self, consumer, path, rule, since, scans=20):
        """The sample lines (JSON lists) of the newest scans since a time, newest first."""
        rows = self.db.execute(
            "SELECT samples FROM log_counts WHERE consumer = ? AND path = ? AND rule = ? AND ts > ? AND samples IS NOT NULL "
            "ORDER BY ts DESC LIMIT ?",
            (consumer, path, rule, since, scans),
        )
        return [row[0] for row in rows]
