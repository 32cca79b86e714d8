"""deploy_info: an application's current and previous release and its deploy history."""

from __future__ import annotations

import os

from ..foundation.tasks import Task
from ..foundation.timestamps import iso
from .journal import check_name, history, journal, lock_with_times
from .releases import current_release, paths

INFO_SPEC = {
    "app": {"type": "str", "required": True},
    "root": {"type": "path", "required": True},
    "history": {"type": "int", "default": 20},
}


def served(ledger):
    """[(app, release, since)] for every application the journal knows; release and since are
    None on a host that only held the deploy lock."""
    return [(app, *ledger.deployed_release(app)) for app in ledger.deployed_apps()]


def apps_summary(settings):
    """[{app, release, since}] for every application the journal knows; [] without a ledger."""
    if not os.path.exists(settings.database):
        return []
    with journal(settings) as ledger:
        return [{"app": app, "release": release, "since": iso(since)} for app, release, since in served(ledger)]


def _info(args, ctx):
    check_name(args["app"], "app")
    current = current_release(args["root"])
    with journal(ctx.settings) as ledger:
        previous = ledger.rollback_target(args["app"], current) if current else None
        releases_dir = paths(args["root"])[0]
        releases = [name for name in ledger.prepared_releases(args["app"]) if os.path.isdir(os.path.join(releases_dir, name))]
        lock = lock_with_times(ledger, args["app"])
        return {
            "changed": False,
            "app": args["app"],
            "current": current,
            "previous": previous,
            "releases": releases,
            "lock": lock,
            "history": history(ledger, args["app"], args["history"]),
        }


DEPLOY_INFO = Task(name="deploy_info", argument_spec=INFO_SPEC, run=_info)
