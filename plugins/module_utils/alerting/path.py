"""The one alert path: observe a state, pick the routes, deliver.

The job runner, the checks, job_retry and the supervisor listener all raise alerts
through `observe_and_send`; alerts.py decides whether an observation is worth an alert
and notify.py delivers it.
"""

from __future__ import annotations

from . import alerts


def pick_routes(settings, routes):
    """A job's own routes when it names them (an empty list silences it), else the host's defaults."""
    return list(routes) if routes is not None else list(settings.default_routes)


def observe_and_send(ledger, settings, key, severity, summary, *, check, routes=None, log=None, **how):
    """Record one observation of `key`; send the alert it calls for, if any.

    `how` takes the options of alerts.observe (after, policy, details, runbook, stage).
    Returns (alert or None, names of routes still holding it undelivered).
    """
    alert = alerts.observe(ledger, key, severity, summary, host=settings.host, check=check, **how)
    if alert is None:
        return None, []
    names = pick_routes(settings, routes)
    if not names:
        return alert, []
    from . import notify  # deferred: its HTTP, TLS and SMTP modules load only when something is sent

    failed = notify.deliver(alert, names, settings, log, ledger=ledger)
    if log is not None:
        log("alert", key=key, action=alert.action, reason=alert.reason, routes=names, failed_routes=failed)
    return alert, failed
