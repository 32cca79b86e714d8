"""The deploy journal and the deploy lock, both in the host's ledger (foundation/ledger.py).

One journal row per deploy, application and action (deploy, rollback, migrate, summary)
on each host: the release, the one it replaced, start and end, the outcome, and on the
migration host the schema versions and the backup id. Rollback reads its target here, never
from file times. The lock row names who deploys what from where; a second deploy is refused
with those details, and only a lock older than its time to live can be broken, on request.
"""

from __future__ import annotations

import contextlib
import re

from ..foundation.errors import EXIT_ALREADY_RUNNING, CaretakerError, ConfigError
from ..foundation.ledger import Ledger
from ..foundation.timestamps import iso

# A host switched by a deploy still under way or finished well: what a fleet rollback reverts.
SWITCHED = ("switched", "ok")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


class LockHeld(CaretakerError):
    exit_code = EXIT_ALREADY_RUNNING


@contextlib.contextmanager
def journal(settings):
    ledger = Ledger(settings.database)
    try:
        yield ledger
    finally:
        ledger.close()


def history(ledger, app, limit):
    return [dict(row, started=iso(row["started"]), ended=iso(row["ended"])) for row in ledger.deploy_history(app, limit)]


def lock_with_times(ledger, app):
    held = ledger.deploy_lock(app)
    return dict(held, since=iso(held["since"])) if held else None


def take_lock(ledger, args):
    """(changed, broken lock or None); raises LockHeld naming the holder."""

    def may_break(held, now):
        age = now - held["since"]
        who = (f"{held['holder']} from {held['controller']} since {iso(held['since'])}"
               f" (deploy {held['deploy_id']}, release {held['release']})")
        if age <= held["ttl"]:
            raise LockHeld(f"deploy_lock: application {args['app']!r} is being deployed by {who}; its lock expires"
                           f" in {int(held['ttl'] - age)} s")
        if not args["break_lock"]:
            raise LockHeld(f"deploy_lock: application {args['app']!r} is locked by {who}; the lock is {int(age)} s old,"
                           f" past its time to live: break it explicitly (break_lock) if that deploy is dead")

    changed, broken = ledger.take_deploy_lock(args["app"], args["deploy_id"], args["holder"], args["controller"],
                                              args["release"], args["ttl"], may_break)
    return changed, (dict(broken, since=iso(broken["since"])) if broken else None)


def check_name(value, field):
    if not value or not NAME.match(value):
        raise ConfigError(f"must be letters, digits and . _ + - (at most 128, not starting with a sign), got {value!r}", field=field)
    return value
