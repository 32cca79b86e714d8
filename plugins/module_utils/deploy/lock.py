"""deploy_lock: one deploy of an application at a time, and its end journaled and announced.

state=present takes the lock (refused with the holder's details while another deploy holds
it); state=absent ends the deploy: journals its outcome on this host, drops the lock and,
when it failed, alerts through the notifier's routes.
"""

from __future__ import annotations

import time

from ..foundation.errors import ConfigError
from ..foundation.tasks import Task
from .journal import Journal, check_name

LOCK_SPEC = {
    "app": {"type": "str", "required": True},
    "deploy_id": {"type": "str", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "holder": {"type": "str", "default": "unknown"},
    "controller": {"type": "str", "default": "unknown"},
    "release": {"type": "str"},
    "ttl": {"type": "int", "default": 3600},
    "break_lock": {"type": "bool", "default": False},
    "outcome": {"type": "str", "default": "ok", "choices": ["ok", "failed", "rolled_back"]},
    "reason": {"type": "str"},
    "alert_routes": {"type": "list", "elements": "str"},
}


def _alert(args, ctx):
    from ..alerting.alerts import Alert
    from ..alerting.notify import deliver

    routes = args["alert_routes"] if args["alert_routes"] is not None else ctx.settings.default_routes
    if not routes:
        return []
    alert = Alert(
        key=f"deploy:{args['app']}",
        host=ctx.settings.host,
        check=f"deploy {args['app']}",
        action="trigger",
        severity="critical",
        summary=f"deploy of {args['app']} {args['release'] or ''} {args['outcome']}: {args['reason'] or 'no reason given'}".replace("  ", " "),
        details={"deploy_id": args["deploy_id"], "release": args["release"], "outcome": args["outcome"]},
    )
    return deliver(alert, routes, ctx.settings, log=ctx.log)


def _lock(args, ctx):
    check_name(args["app"], "app")
    if args["ttl"] < 1:
        raise ConfigError(f"must be at least 1 second, got {args['ttl']}", field="ttl")
    result = {"changed": False, "app": args["app"], "deploy_id": args["deploy_id"], "broken": None, "alerted": False}
    with Journal(ctx.settings) as journal:
        held = journal.lock(args["app"])
        if args["state"] == "present":
            if ctx.check_mode:
                result["changed"] = not held or held["deploy_id"] != args["deploy_id"]
                return result
            changed, broken = journal.acquire(args["app"], args["deploy_id"], args["holder"], args["controller"],
                                              args["release"], args["ttl"], args["break_lock"])
            if broken:
                result["broken"] = broken
                result["warnings"] = [f"broke the expired deploy lock of {broken['holder']} from {broken['controller']}"
                                      f" (deploy {broken['deploy_id']}, since {broken['since_iso']})"]
                ctx.log("lock_broken", app=args["app"], holder=broken["holder"], deploy_id=broken["deploy_id"])
            if changed:
                journal.record(args["deploy_id"], args["app"], "summary", release=args["release"],
                               detail=f"{args['holder']} from {args['controller']}")
            result["changed"] = changed
            result["lock"] = journal.lock(args["app"])
            return result
        ours = bool(held and held["deploy_id"] == args["deploy_id"])
        result["changed"] = ours
        if ctx.check_mode or not ours:
            return result
        journal.record(args["deploy_id"], args["app"], "summary", outcome=args["outcome"], ended=time.time(), detail=args["reason"])
        journal.release_lock(args["app"], args["deploy_id"])
    if args["outcome"] != "ok":
        result["undelivered_routes"] = _alert(args, ctx)
        result["alerted"] = True
    return result


DEPLOY_LOCK = Task(name="deploy_lock", argument_spec=LOCK_SPEC, run=_lock)
