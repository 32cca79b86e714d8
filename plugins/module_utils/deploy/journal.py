"""The deploy journal and the deploy lock, both in the host's ledger.

One journal row per deploy, application and action (deploy, rollback, migrate) on each
host: the release, the one it replaced, start and end, the outcome, and on the migration
host the schema versions and the backup id. Rollback reads its target here, never from
file times. The lock row names who deploys what from where; a second deploy is refused
with those details, and only a lock older than its time to live can be broken, on request.
"""

from __future__ import annotations

import datetime
import time

from ..foundation.errors import EXIT_ALREADY_RUNNING, CaretakerError, ConfigError
from ..foundation.ledger import Ledger

# A host switched by a deploy still under way or finished well: what a fleet rollback reverts.
SWITCHED = ("switched", "ok")


class LockHeld(CaretakerError):
    exit_code = EXIT_ALREADY_RUNNING


def iso(timestamp):
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="seconds")


class Journal:
    def __init__(self, settings):
        self.ledger = Ledger(settings.database)
        self.db = self.ledger.db

    def close(self):
        self.ledger.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # journal ---------------------------------------------------------------------
    def record(self, deploy_id, app, action, **fields):
        """Insert or update the row of (deploy_id, app, action) with fields."""
        row = self.row(deploy_id, app, action)
        if row is None:
            fields.setdefault("started", time.time())
            fields.setdefault("outcome", "running")
            columns = ["deploy_id", "app", "action", *fields]
            # column names come from this module's callers, never from input; values are parameters
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

    def row(self, deploy_id, app, action):
        found = self.db.execute(
            "SELECT * FROM deploys WHERE deploy_id = ? AND app = ? AND action = ?", (deploy_id, app, action)
        ).fetchone()
        return dict(found) if found else None

    def history(self, app, limit=20):
        rows = self.db.execute(
            "SELECT * FROM deploys WHERE app = ? ORDER BY started DESC, rowid DESC LIMIT ?", (app, limit)
        ).fetchall()
        return [dict(row, started=iso(row["started"]), ended=iso(row["ended"])) for row in rows]

    def rollback_target(self, app, current):
        """The release the current one replaced when it was last put in place, or None."""
        found = self.db.execute(
            """SELECT previous FROM deploys
                WHERE app = ? AND release = ? AND action IN ('deploy', 'rollback') AND outcome = 'ok'
                ORDER BY started DESC, rowid DESC LIMIT 1""",
            (app, current),
        ).fetchone()
        return found["previous"] if found else None

    def apps(self):
        return [row["app"] for row in self.db.execute("SELECT DISTINCT app FROM deploys ORDER BY app")]

    def current(self, app):
        """The release the journal says serves app now: the last switch, or what a revert went back to."""
        found = self.db.execute(
            """SELECT release, previous, outcome, started FROM deploys
                WHERE app = ? AND action IN ('deploy', 'rollback') AND outcome IN ('switched', 'ok', 'rolled_back')
                ORDER BY started DESC, rowid DESC LIMIT 1""",
            (app,),
        ).fetchone()
        if found is None:
            return None, None
        return (found["previous"] if found["outcome"] == "rolled_back" else found["release"]), iso(found["started"])

    # releases --------------------------------------------------------------------
    def add_release(self, app, release, source, digest):
        self.db.execute(
            "INSERT OR REPLACE INTO deploy_releases (app, release, source, digest, prepared) VALUES (?, ?, ?, ?, ?)",
            (app, release, source, digest, time.time()),
        )

    def release(self, app, release):
        found = self.db.execute("SELECT * FROM deploy_releases WHERE app = ? AND release = ?", (app, release)).fetchone()
        return dict(found) if found else None

    def releases(self, app):
        """Known releases of app, oldest prepared first."""
        rows = self.db.execute("SELECT release FROM deploy_releases WHERE app = ? ORDER BY prepared, rowid", (app,))
        return [row["release"] for row in rows]

    def forget_release(self, app, release):
        self.db.execute("DELETE FROM deploy_releases WHERE app = ? AND release = ?", (app, release))

    # the deploy lock -------------------------------------------------------------
    def lock(self, app):
        found = self.db.execute("SELECT * FROM deploy_locks WHERE app = ?", (app,)).fetchone()
        return dict(found, since_iso=iso(found["since"])) if found else None

    def acquire(self, app, deploy_id, holder, controller, release, ttl, break_expired=False):
        """Take the lock: returns (changed, broken lock or None). Raises LockHeld naming the holder."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            held = self.lock(app)
            broken = None
            if held and held["deploy_id"] == deploy_id:
                self.db.execute("COMMIT")
                return False, None
            if held:
                age = now - held["since"]
                who = (f"{held['holder']} from {held['controller']} since {held['since_iso']}"
                       f" (deploy {held['deploy_id']}, release {held['release']})")
                if age <= held["ttl"]:
                    raise LockHeld(f"deploy_lock: application {app!r} is being deployed by {who}; its lock expires"
                                   f" in {int(held['ttl'] - age)} s")
                if not break_expired:
                    raise LockHeld(f"deploy_lock: application {app!r} is locked by {who}; the lock is {int(age)} s old,"
                                   f" past its time to live: break it explicitly (break_lock) if that deploy is dead")
                broken = held
                self.db.execute("DELETE FROM deploy_locks WHERE app = ?", (app,))
            self.db.execute(
                "INSERT INTO deploy_locks (app, deploy_id, holder, controller, release, since, ttl) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (app, deploy_id, holder, controller, release, now, ttl),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return True, broken

    def release_lock(self, app, deploy_id):
        """Drop the lock if this deploy holds it; another deploy's lock is left alone."""
        cursor = self.db.execute("DELETE FROM deploy_locks WHERE app = ? AND deploy_id = ?", (app, deploy_id))
        return cursor.rowcount > 0


def check_name(value, field):
    import re

    if not value or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$", value):
        raise ConfigError(f"must be letters, digits and . _ + - (at most 128, not starting with a sign), got {value!r}", field=field)
    return value
