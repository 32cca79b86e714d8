# Private to the caretaker.ops collection: the engine's API may change without notice.
"""When to alert: state changes only, after N consecutive bad observations, and a resolve.

The job runner feeds it each run's outcome; checks feed it each probe's severity. It
decides, from the state kept in the ledger, whether an alert goes out; notify.py delivers.
"""

from __future__ import annotations

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

    def to_dict(self):
        return asdict(self)


def observe(ledger, key, severity, summary, *, host, check, after=2, details=None, runbook=None):
    """Record one observation; return the Alert to send, or None when nothing changed."""
    db = ledger.db
    now = time.time()
    row = db.execute("SELECT * FROM alert_state WHERE key = ?", (key,)).fetchone()
    state = dict(row) if row else {"status": OK, "consecutive": 0, "first_seen": None, "alerted": 0}
    alert = None
    if severity == OK:
        if state["alerted"]:
            alert = Alert(key, host, check, "resolve", OK, summary, details or {}, state["first_seen"], runbook)
        state.update(status=OK, consecutive=0, first_seen=None, alerted=0)
    else:
        state["consecutive"] = state["consecutive"] + 1 if state["status"] != OK else 1
        state["first_seen"] = state["first_seen"] or now
        changed = state["status"] != severity
        state["status"] = severity
        if state["consecutive"] >= after and (not state["alerted"] or changed):
            alert = Alert(key, host, check, "trigger", severity, summary, details or {}, state["first_seen"], runbook)
            state["alerted"] = 1
    db.execute(
        """INSERT INTO alert_state (key, status, consecutive, first_seen, alerted, last_sent, summary)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET status = excluded.status, consecutive = excluded.consecutive,
               first_seen = excluded.first_seen, alerted = excluded.alerted,
               last_sent = COALESCE(excluded.last_sent, alert_state.last_sent), summary = excluded.summary""",
        (key, state["status"], state["consecutive"], state["first_seen"], state["alerted"], now if alert else None, summary),
    )
    return alert
