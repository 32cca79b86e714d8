"""What every check kind (health_check, cert_check, log_alert) shares.

A check produces Findings, each with a status (ok, warning, critical, unknown). This
module turns them into the structured result, the Nagios plugin output (exit 0/1/2/3
and performance data), Prometheus textfile metrics and, when run as a job, alerts.
A finding that could not be measured is UNKNOWN, never OK.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..foundation.errors import ConfigError

EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
# The order in which one status outweighs another when summarising several findings.
RANK = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}
CHECK_KINDS = ("health_check", "cert_check", "log_alert", "updates_info")

THRESHOLD_OPTIONS = {
    "warning": {"type": "float"},
    "critical": {"type": "float"},
}


@dataclass
class Finding:
    name: str
    status: str
    message: str
    value: float | None = None
    unit: str = ""
    warning: float | None = None
    critical: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    details: dict = field(default_factory=dict)
    stage: str | None = None  # e.g. certificate stage "14d": a new stage alerts again

    def to_dict(self):
        return asdict(self)


def unknown(name, message, **details):
    return Finding(name, "unknown", message, details=details)


def grade(value, warning, critical):
    """Status of a measurement where higher is worse."""
    if critical is not None and value >= critical:
        return "critical"
    if warning is not None and value >= warning:
        return "warning"
    return "ok"


def thresholds(options, field, defaults=(None, None)):
    """(warning, critical) from a probe's options, checked for sense; ConfigError names the field."""
    warning = options.get("warning") if options.get("warning") is not None else defaults[0]
    critical = options.get("critical") if options.get("critical") is not None else defaults[1]
    for name, value in (("warning", warning), ("critical", critical)):
        if value is not None and value < 0:
            raise ConfigError(f"must not be negative, got {value}", field=f"{field}.{name}")
    if warning is not None and critical is not None and warning > critical:
        raise ConfigError(f"warning ({warning}) must not be above critical ({critical})", field=f"{field}.warning")
    return warning, critical


def measured(name, value, unit, limits, message, **extra):
    """A Finding graded against (warning, critical)."""
    warning, critical = limits
    status = grade(value, warning, critical)
    return Finding(name, status, message, value=value, unit=unit, warning=warning, critical=critical, **extra)


def worst(statuses):
    return max(statuses, key=RANK.__getitem__, default="ok")


def result(kind, findings):
    """The task result every check kind returns."""
    status = worst(finding.status for finding in findings) if findings else "unknown"
    bad = [finding for finding in findings if finding.status != "ok"]
    if not findings:
        summary = "nothing was checked"
    elif bad:
        summary = "; ".join(f"{finding.name}: {finding.message}" for finding in sorted(bad, key=lambda f: -RANK[f.status]))
    else:
        summary = f"{len(findings)} check(s) ok"
    return {
        "changed": False,
        "kind": kind,
        "status": status,
        "exit_code": EXIT_CODES[status],
        "summary": summary,
        "findings": [finding.to_dict() for finding in findings],
    }


# -- Nagios -------------------------------------------------------------------------


def _number(value):
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def perfdata(findings):
    items = []
    for finding in findings:
        if finding["value"] is None:
            continue
        label = finding["name"].replace("'", "_")
        values = [finding["value"], finding["warning"], finding["critical"], finding["minimum"], finding["maximum"]]
        text = f"'{label}'={_number(values[0])}{finding['unit']};" + ";".join(_number(value) for value in values[1:])
        items.append(text.rstrip(";"))
    return " ".join(items)


def nagios(outcome, label="CARETAKER"):
    """One line in the Nagios plugin format: STATUS - summary | perfdata."""
    line = f"{label} {outcome['status'].upper()} - {outcome['summary']}"
    data = perfdata(outcome["findings"])
    return f"{line} | {data}" if data else line


# -- metrics and alerts ---------------------------------------------------------------


def write_metrics(settings, kind, job, outcome):
    from ..foundation import metrics

    if not getattr(settings, "metrics_dir", None):
        return None
    labels = {"kind": kind, "job": job or "adhoc"}
    families = [
        ("caretaker_check_status", "gauge", "Check status: 0 ok, 1 warning, 2 critical, 3 unknown.",
         [({**labels, "check": f["name"]}, EXIT_CODES[f["status"]]) for f in outcome["findings"]]),
        ("caretaker_check_value", "gauge", "The value the check measured, in the unit of its label.",
         [({**labels, "check": f["name"], "unit": f["unit"]}, f["value"]) for f in outcome["findings"] if f["value"] is not None]),
    ]
    return metrics.write_textfile(settings.metrics_dir, f"caretaker_{kind}_{job or 'adhoc'}.prom", families)


def alert_on(ctx, kind, outcome, runbook=None):
    """As a scheduled job, feed each finding to the alert state machine and deliver what it decides."""
    from ..alerting import alerts
    from ..alerting.path import observe_and_send
    from ..foundation.config import load_job
    from ..foundation.ledger import Ledger

    if not ctx.job or ctx.check_mode or not getattr(ctx, "alerts", True):
        return []
    job = load_job(ctx.settings, ctx.job)
    policy = alerts.Policy.from_job_alert(job.alert)
    runbook = runbook or job.alert["runbook"]
    sent = []
    ledger = Ledger(ctx.settings.database)
    try:
        for finding in outcome["findings"]:
            check = f"{ctx.job}:{finding['name']}"
            details = {key: finding[key] for key in ("value", "unit", "warning", "critical") if finding[key] is not None}
            details.update(finding["details"])
            alert = observe_and_send(
                ledger, ctx.settings, f"{kind}:{check}", finding["status"], finding["message"], check=check,
                routes=job.alert["routes"], log=ctx.log, details=details, runbook=runbook, stage=finding["stage"], policy=policy,
            )
            if alert is not None:
                sent.append({"check": check, "action": alert.action, "severity": alert.severity, "reason": alert.reason})
    finally:
        ledger.close()
    return sent


def record_state(ledger, job, kind, status, exit_code, outcome):
    """Keep a check job's own state in the ledger: a run that produced no check result is UNKNOWN."""
    if status == "ok" and outcome.get("status") in EXIT_CODES:
        state, summary, findings = outcome["status"], outcome.get("summary"), outcome.get("findings", [])
    else:
        state, summary, findings = "unknown", f"the check did not complete: {status} (exit {exit_code})", []
    ledger.record_check(job, kind, state, summary, findings)


def finish(ctx, kind, findings, runbook=None):
    """Build the result, write metrics and send alerts: the last step of every check task."""
    outcome = result(kind, findings)
    if not ctx.check_mode and ctx.job:
        write_metrics(ctx.settings, kind, ctx.job, outcome)
    outcome["alerts"] = alert_on(ctx, kind, outcome, runbook)
    return outcome
