"""deploy_info: an application's current and previous release and its deploy history."""

from __future__ import annotations

import os

from ..foundation.tasks import Task
from .journal import Journal, check_name
from .releases import current_release, paths

INFO_SPEC = {
    "app": {"type": "str", "required": True},
    "root": {"type": "path", "required": True},
    "history": {"type": "int", "default": 20},
}


def apps_summary(settings):
    """[{app, release, since}] for every application the journal knows; [] without a ledger."""
    if not os.path.exists(settings.database):
        return []
    with Journal(settings) as journal:
        return [dict(zip(("app", "release", "since"), (app, *journal.current(app)), strict=True)) for app in journal.apps()]


def _info(args, ctx):
    check_name(args["app"], "app")
    current = current_release(args["root"])
    with Journal(ctx.settings) as journal:
        previous = journal.rollback_target(args["app"], current) if current else None
        releases_dir = paths(args["root"])[0]
        releases = [name for name in journal.releases(args["app"]) if os.path.isdir(os.path.join(releases_dir, name))]
        lock = journal.lock(args["app"])
        return {
            "changed": False,
            "app": args["app"],
            "current": current,
            "previous": previous,
            "releases": releases,
            "lock": lock,
            "history": journal.history(args["app"], args["history"]),
        }


DEPLOY_INFO = Task(name="deploy_info", argument_spec=INFO_SPEC, run=_info)
