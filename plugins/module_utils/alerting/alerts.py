"""When to alert: state changes only, after N consecutive bad observations, and a resolve.

The job runner feeds it each run's outcome; checks feed it each probe's severity. It
decides, from the state kept in the ledger, whether an alert goes out; notify.py delivers.

- A trigger goes out once a check has been bad for `after` consecutive observations, and
  again only when its severity (or stage, e.g. a certificate's 30/14/7 days) changes.
- While it stays bad, a reminder goes out every `remind_hours`.
- A check that flips state more than `flap_limit` times within `flap_window` seconds sends
  one "flapping" alert and nothing more until it has kept one state for `after` runs.
- A resolve goes out when a check that alerted is OK again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

OK = "ok"
SEVERITIES = ("ok", "warning", "critical", "unknown")


@dataclass
class Alert:
    key: str
    host: str
    check: str
    action: str  # "trigger" or "resolve"
    severity: str
    summary: str
    details: dict = field(default_factory=dict)
    first_seen: float | None = None
    runbook: str | None = None
    ts: float = field(default_factory=time.time)
    reason: str = "state_change"  # state_change, reminder, flapping, settled

    def to_dict(self):
        return asdict(self)


@dataclass
class Policy:
    """How patient alerting is; job files set it under `alert:`."""

    after: int = 2
    remind_hours: float | None = None
    flap_limit: int = 4
    flap_window: float = 3600.0

    @classmethod
    def from_job_alert(cls, alert):
        alert = alert or {}
        values = {name: alert[name] for name in ("after", "remind_hours", "flap_limit", "flap_window") if alert.get(name) is not None}
        return cls(**values)


def _tracking(ledger, key):
    track = ledger.alert_tracking(key)
    if track is None:
        return {"stage": None, "flips": [], "flapping": 0, "stable_runs": 0, "alerted_severity": None}
    track["flips"] = json.loads(track["flips"])
    return track


def observe(ledger, key, severity, summary, *, host, check, after=2, details=None, runbook=None,
            stage=None, policy=None, now=None):
    """Record one observation; return the Alert to send, or None when nothing should go out."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    policy = policy or Policy(after=after)
    now = time.time() if now is None else now
    state = ledger.alert_state(key) or {"status": OK, "consecutive": 0, "first_seen": None, "alerted": 0, "last_sent": None}
    track = _tracking(ledger, key)

    def make(action, alert_severity, reason):
        return Alert(key, host, check, action, alert_severity, summary, dict(details or {}), state["first_seen"], runbook, now, reason)

    previous = state["status"]
    if severity != previous:
        track["flips"].append(now)
        track["stable_runs"] = 1
    else:
        track["stable_runs"] += 1
    track["flips"] = [flip for flip in track["flips"] if flip > now - policy.flap_window]

    if severity == OK:
        state["consecutive"] = 0
    else:
        state["consecutive"] = state["consecutive"] + 1 if previous != OK else 1
        state["first_seen"] = state["first_seen"] or now
    state["status"] = severity

    alert = None
    if track["flapping"]:
        if track["stable_runs"] >= policy.after and len(track["flips"]) <= policy.flap_limit:
            track["flapping"] = 0  # settled: say where it settled, once
            if severity == OK:
                alert = make("resolve", OK, "settled") if state["alerted"] else None
                state["alerted"] = 0
            else:
                alert = make("trigger", severity, "settled")
                state["alerted"] = 1
    elif len(track["flips"]) > policy.flap_limit:
        track["flapping"] = 1
        alert = make("trigger", "warning" if severity == OK else severity, "flapping")
        alert.summary = f"{check} is flapping: {len(track['flips'])} state changes in {policy.flap_window:.0f}s; last: {summary}"
        state["alerted"] = 1
    elif severity == OK:
        if state["alerted"]:
            alert = make("resolve", OK, "state_change")
        state["alerted"] = 0
    elif state["consecutive"] >= policy.after:
        changed = track["alerted_severity"] != severity or track["stage"] != stage
        if not state["alerted"] or changed:
            alert = make("trigger", severity, "state_change")
            state["alerted"] = 1
        elif policy.remind_hours and state["last_sent"] and now - state["last_sent"] >= policy.remind_hours * 3600:
            alert = make("trigger", severity, "reminder")

    if severity == OK:
        state["first_seen"] = None
    if alert is not None:
        state["last_sent"] = now
        track["alerted_severity"] = alert.severity if alert.action == "trigger" else None
        track["stage"] = stage if alert.action == "trigger" else None
    ledger.save_alert_state(key, state, {**track, "flips": json.dumps(track["flips"])}, summary)
    return alert
