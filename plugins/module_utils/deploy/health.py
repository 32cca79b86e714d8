"""deploy_health: a host passes when N answers in a row are healthy, within a time budget.

One good answer proves little (a process about to die still answers once) and one bad one
is not a verdict (the first request after a restart may land before the workers are up):
the gate asks for `consecutive` healthy answers, each from the engine's HTTP probe, and
gives up only when the budget is spent. With `expect_release` the body must name the new
release, so an old process still holding the port fails the gate.
"""

from __future__ import annotations

import time

from ..checks.health_check import probe_http
from ..foundation.errors import CaretakerError, ConfigError
from ..foundation.tasks import Task

HEALTH_SPEC = {
    "url": {"type": "str", "required": True},
    "consecutive": {"type": "int", "default": 3},
    "interval": {"type": "float", "default": 1.0},
    "budget": {"type": "float", "default": 60.0},
    "timeout": {"type": "float", "default": 5.0},
    "expect_status": {"type": "list", "elements": "int", "default": [200]},
    "expect_release": {"type": "str"},
    "verify_tls": {"type": "bool", "default": True},
    "ca_file": {"type": "path"},
}


NOT_UP_POLL = 0.1


def _health(args, ctx):
    for field in ("consecutive",):
        if args[field] < 1:
            raise ConfigError(f"must be at least 1, got {args[field]}", field=field)
    for field in ("budget", "timeout"):
        if args[field] <= 0:
            raise ConfigError(f"must be above 0, got {args[field]}", field=field)
    probe = {"type": "http", "name": "deploy-health", "url": args["url"], "expect_status": args["expect_status"],
             "body_contains": args["expect_release"], "verify_tls": args["verify_tls"], "ca_file": args["ca_file"],
             "timeout": args["timeout"]}
    result = {"changed": False, "url": args["url"], "passed": 0, "attempts": 0, "seconds": 0.0, "last": None}
    if ctx.check_mode:
        return result
    started = time.monotonic()
    deadline = started + args["budget"]
    while True:
        finding = probe_http(probe, "url", (None, None))[0]
        result["attempts"] += 1
        result["last"] = finding.message
        result["passed"] = result["passed"] + 1 if finding.status == "ok" else 0
        result["seconds"] = round(time.monotonic() - started, 3)
        if result["passed"] >= args["consecutive"]:
            return result
        # No HTTP answer at all (the process is still starting): asking again soon costs the
        # app nothing, and the gate starts counting as soon as it is up.
        pause = args["interval"] if finding.value is not None else min(args["interval"], NOT_UP_POLL)
        if time.monotonic() + pause > deadline:
            raise CaretakerError(
                f"url: {args['url']} did not answer healthy {args['consecutive']} times in a row within {args['budget']:g} s"
                f" ({result['attempts']} attempts; last: {finding.message})",
                {"attempts": result["attempts"], "last": finding.message},
            )
        time.sleep(pause)


DEPLOY_HEALTH = Task(name="deploy_health", argument_spec=HEALTH_SPEC, run=_health)
