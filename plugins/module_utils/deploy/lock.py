"""deploy_lock: one deploy of an application at a time, and its end journaled and announced.

state=present takes the lock (refused with the holder's details while another deploy holds
it); state=absent ends the deploy: journals its outcome on this host, drops the lock and
reports the outcome through the one alert path: a failed or rolled-back deploy alerts, the
next good one resolves it.
"""

from __future__ import annotations

import time

from ..foundation.errors import ConfigError
from ..foundation.tasks import Task
from .journal import check_name, journal, lock_with_times, take_lock

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


def _announce(ledger, args, ctx):
    """Names of routes still holding the alert undelivered."""
    from ..alerting.path import observe_and_send, pick_routes

    failed = args["outcome"] != "ok"
    summary = f"deploy of {args['app']} {args['release'] or ''} {args['outcome']}"
    if failed:
        summary += f": {args['reason'] or 'no reason given'}"
    alert = observe_and_send(
        ledger, ctx.settings, f"deploy:{args['app']}", "critical" if failed else "ok", summary.replace("  ", " "),
        check=f"deploy {args['app']}", routes=args["alert_routes"], log=ctx.log, after=1,
        details={"deploy_id": args["deploy_id"], "release": args["release"], "outcome": args["outcome"]},
    )
    spooled = ledger.spooled_alerts() if alert is not None else {}
    undelivered = [name for name in pick_routes(ctx.settings, args["alert_routes"]) if name in spooled]
    return alert is not None and failed, undelivered


def _lock(args, ctx):
    check_name(args["app"], "app")
    if args["ttl"] < 1:
        raise ConfigError(f"must be at least 1 second, got {args['ttl']}", field="ttl")
    result = {"changed": False, "app": args["app"], "deploy_id": args["deploy_id"], "broken": None, "alerted": False}
    with journal(ctx.settings) as ledger:
        held = ledger.deploy_lock(args["app"])
        if args["state"] == "present":
            if ctx.check_mode:
                result["changed"] = not held or held["deploy_id"] != args["deploy_id"]
                return result
            changed, broken = take_lock(ledger, args)
            if broken:
                result["broken"] = broken
                result["warnings"] = [f"broke the expired deploy lock of {broken['holder']} from {broken['controller']}"
                                      f" (deploy {broken['deploy_id']}, since {broken['since']})"]
                ctx.log("lock_broken", app=args["app"], holder=broken["holder"], deploy_id=broken["deploy_id"])
            if changed:
                ledger.record_deploy(args["deploy_id"], args["app"], "summary", release=args["release"],
                                     detail=f"{args['holder']} from {args['controller']}")
            result["changed"] = changed
            result["lock"] = lock_with_times(ledger, args["app"])
            return result
        result["changed"] = bool(held and held["deploy_id"] == args["deploy_id"])
        if ctx.check_mode or not result["changed"]:
            return result
        ledger.record_deploy(args["deploy_id"], args["app"], "summary", outcome=args["outcome"], ended=time.time(), detail=args["reason"])
        ledger.drop_deploy_lock(args["app"], args["deploy_id"])
        result["alerted"], result["undelivered_routes"] = _announce(ledger, args, ctx)
    return result


DEPLOY_LOCK = Task(name="deploy_lock", argument_spec=LOCK_SPEC, run=_lock)
