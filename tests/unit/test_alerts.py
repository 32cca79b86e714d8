"""Alert decisions: after N, state changes only, reminders, flap damping, stages, resolve."""

import pytest
from caretaker.alerting import alerts
from caretaker.foundation.ledger import Ledger

HOUR = 3600.0


@pytest.fixture
def ledger(tmp_path):
    db = Ledger(str(tmp_path / "state.db"))
    yield db
    db.close()


def feed(ledger, severities, policy=None, start=1_000_000.0, step=60.0, stage=None):
    """Observe each severity one step apart; return [(index, action, severity, reason)] of alerts sent."""
    sent = []
    for index, severity in enumerate(severities):
        alert = alerts.observe(ledger, "k", severity, f"is {severity}", host="h", check="c", policy=policy,
                               now=start + index * step, stage=stage)
        if alert:
            sent.append((index, alert.action, alert.severity, alert.reason))
    return sent


def test_alerts_after_n_consecutive_failures_and_resolves_once(ledger):
    sent = feed(ledger, ["critical", "critical", "critical", "critical", "ok", "ok"], alerts.Policy(after=2))
    assert sent == [(1, "trigger", "critical", "state_change"), (4, "resolve", "ok", "state_change")]


def test_one_bad_run_sends_nothing(ledger):
    assert feed(ledger, ["ok", "critical", "ok", "warning", "ok"], alerts.Policy(after=2, flap_limit=10)) == []


def test_severity_change_is_a_new_alert(ledger):
    sent = feed(ledger, ["warning", "warning", "critical", "critical", "warning"], alerts.Policy(after=2))
    assert [item[2] for item in sent] == ["warning", "critical", "warning"]


def test_reminders_every_r_hours_while_failing(ledger):
    policy = alerts.Policy(after=1, remind=2 * HOUR)
    # one observation every 30 minutes for 5 hours
    sent = feed(ledger, ["critical"] * 11, policy, step=HOUR / 2)
    assert sent == [(0, "trigger", "critical", "state_change"), (4, "trigger", "critical", "reminder"),
                    (8, "trigger", "critical", "reminder")]


def test_no_reminders_unless_asked(ledger):
    assert len(feed(ledger, ["critical"] * 20, alerts.Policy(after=1), step=HOUR)) == 1


def test_flapping_sends_one_alert_then_holds_until_settled(ledger):
    policy = alerts.Policy(after=2, flap_limit=3, flap_window=600)
    flapping = ["critical", "critical", "ok", "critical", "ok", "critical", "ok", "critical", "ok", "critical"]
    sent = feed(ledger, flapping + ["ok"] * 12, policy, step=60)
    assert sent[:2] == [(1, "trigger", "critical", "state_change"), (2, "resolve", "ok", "state_change")]
    assert sent[2] == (4, "trigger", "warning", "flapping")
    # held while it flips and until the flips have left the window; then one resolve
    assert len(sent) == 4
    assert sent[3][1:] == ("resolve", "ok", "settled")
    assert sent[3][0] >= 10 + 2


def test_flapping_that_settles_bad_triggers_with_its_severity(ledger):
    policy = alerts.Policy(after=2, flap_limit=2, flap_window=300)
    sent = feed(ledger, ["ok", "critical", "ok", "critical", "ok", "critical"] + ["critical"] * 6, policy)
    reasons = [item[3] for item in sent]
    assert reasons == ["flapping", "settled"]
    assert sent[-1][1:3] == ("trigger", "critical")


def test_stage_change_alerts_again_at_the_same_severity(ledger):
    policy = alerts.Policy(after=1)
    sent = []
    for index, (severity, stage) in enumerate([("warning", "30"), ("warning", "30"), ("warning", "14"), ("critical", "7"), ("critical", "7")]):
        alert = alerts.observe(ledger, "cert", severity, "expiring", host="h", check="cert", policy=policy, stage=stage, now=1e6 + index)
        if alert:
            sent.append((index, stage))
    assert sent == [(0, "30"), (2, "14"), (3, "7")]


def test_first_seen_is_kept_until_resolved(ledger):
    a1 = alerts.observe(ledger, "k", "warning", "w", host="h", check="c", after=1, now=100.0)
    a2 = alerts.observe(ledger, "k", "critical", "c", host="h", check="c", after=1, now=200.0)
    a3 = alerts.observe(ledger, "k", "ok", "ok", host="h", check="c", after=1, now=300.0)
    assert a1.first_seen == a2.first_seen == a3.first_seen == 100.0


def test_unknown_severity_is_refused(ledger):
    with pytest.raises(ValueError, match="unknown severity"):
        alerts.observe(ledger, "k", "bad", "x", host="h", check="c")
