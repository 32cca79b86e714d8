"""The notifier against a real HTTP receiver and a real SMTP server: payloads, spool, retry, rate limits."""

import json
import socket
import time

import pytest
from caretaker.alerting import alerts, notify
from caretaker.foundation.config import Settings
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    db = Ledger(str(tmp_path / "state.db"))
    yield db
    db.close()


def settings_with(tmp_path, **routes):
    return Settings(etc_dir=str(tmp_path), host="web1", state_dir=str(tmp_path), alert_routes=routes)


def failing_twice(ledger, key="disk:/", severity="critical", **kwargs):
    """Two bad observations: the second returns the trigger."""
    first = alerts.observe(ledger, key, severity, "disk / 97% used", host="web1", check=key, **kwargs)
    assert first is None
    return alerts.observe(ledger, key, severity, "disk / 97% used", host="web1", check=key,
                          details={"used_percent": 97.0}, runbook="https://runbooks.example/disk", **kwargs)


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_every_channel_gets_its_own_payload_shape(tmp_path, ledger, inbox, smtp_server):
    settings = settings_with(
        tmp_path,
        slack={"type": "slack", "url": inbox.url("slack"), "channel": "#ops"},
        pd={"type": "pagerduty", "routing_key": "R0UTINGKEY123", "events_url": inbox.url("pagerduty")},
        hook={"type": "webhook", "url": inbox.url("webhook")},
        mail={"type": "email", "host": "127.0.0.1", "port": smtp_server.port, "sender": "caretaker@web1",
              "to": ["ops@example.org"], "username": smtp_server.user, "password": smtp_server.password,
              "ca_file": smtp_server.ca_file},
    )
    before = len(smtp_server.messages)
    alert = failing_twice(ledger)
    assert notify.deliver(alert, ["slack", "pd", "hook", "mail"], settings, ledger=ledger) == []

    slack = inbox.payloads("slack")[0]
    assert slack["text"].startswith("CRITICAL web1 disk:/")
    assert slack["channel"] == "#ops"
    assert {"title": "Runbook", "value": "https://runbooks.example/disk", "short": False} in slack["attachments"][0]["fields"]

    event = inbox.payloads("pagerduty")[0]
    assert event["event_action"] == "trigger"
    assert event["routing_key"] == "R0UTINGKEY123"
    assert event["dedup_key"] == "caretaker/web1/disk:/"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == "web1"
    assert event["payload"]["custom_details"]["used_percent"] == 97.0
    assert event["links"] == [{"href": "https://runbooks.example/disk", "text": "Runbook"}]

    hook = inbox.payloads("webhook")[0]
    assert (hook["host"], hook["check"], hook["severity"], hook["action"]) == ("web1", "disk:/", "critical", "trigger")
    assert hook["first_seen"] <= hook["ts"]
    assert hook["first_seen_iso"].endswith("Z")
    assert hook["details"] == {"used_percent": 97.0}

    assert len(smtp_server.messages) == before + 1
    mail = smtp_server.messages[-1]
    assert mail["user"] == smtp_server.user
    assert mail["to"] == ["ops@example.org"]
    assert "Subject: [caretaker] CRITICAL web1 disk:/" in mail["data"]
    assert "Runbook:    https://runbooks.example/disk" in mail["data"]

    resolve = alerts.observe(ledger, "disk:/", "ok", "disk / 60% used", host="web1", check="disk:/")
    notify.deliver(resolve, ["pd", "hook"], settings, ledger=ledger)
    events = inbox.payloads("pagerduty")
    assert events[1] == {"routing_key": "R0UTINGKEY123", "dedup_key": "caretaker/web1/disk:/", "event_action": "resolve"}
    assert inbox.payloads("webhook")[1]["action"] == "resolve"


def test_spooled_while_webhook_is_down_then_delivered_in_order(tmp_path, ledger, inbox):
    settings = settings_with(tmp_path, hook={"type": "webhook", "url": inbox.url("webhook")})
    inbox.fail("webhook", 503)
    events = []
    for number in range(3):
        alert = alerts.observe(ledger, f"check{number}", "critical", f"broken {number}", host="web1", check=f"check{number}", after=1)
        failed = notify.deliver(alert, ["hook"], settings, lambda event, **fields: events.append((event, fields)), ledger=ledger)
        assert failed == ["hook"]
    assert notify.spooled(ledger) == {"hook": 3}
    assert inbox.payloads("webhook") == []
    assert ("alert_delivery_failed", {"route": "hook", "error": "HTTP 503 Service Unavailable", "spooled": True}) in events
    # an hour later the webhook is back: the next run sends everything, oldest first
    inbox.recover("webhook")
    assert notify.flush(settings, ledger=ledger) == []
    assert [payload["check"] for payload in inbox.payloads("webhook")] == ["check0", "check1", "check2"]
    assert notify.spooled(ledger) == {}


def test_rate_limit_holds_the_rest_for_the_next_run(tmp_path, ledger, inbox):
    settings = settings_with(tmp_path, slack={"type": "slack", "url": inbox.url("slack"), "rate_limit": 2, "rate_period": 3600.0})

    def an_hour_passes():  # the sends move out of the rate window, however slow this machine is
        ledger.db.execute("UPDATE alert_sent SET ts = ts - 3600")

    for number in range(5):
        alert = alerts.observe(ledger, f"c{number}", "warning", f"w {number}", host="web1", check=f"c{number}", after=1)
        notify.deliver(alert, ["slack"], settings, ledger=ledger)
    assert len(inbox.payloads("slack")) == 2
    assert notify.spooled(ledger) == {"slack": 3}
    assert notify.flush(settings, ledger=ledger) == ["slack"]  # still within the hour: nothing more goes
    assert len(inbox.payloads("slack")) == 2
    an_hour_passes()
    assert notify.flush(settings, ledger=ledger) == ["slack"]
    assert len(inbox.payloads("slack")) == 4
    an_hour_passes()
    assert notify.flush(settings, ledger=ledger) == []
    assert [payload["text"].split(":")[0] for payload in inbox.payloads("slack")] == [f"WARNING web1 c{n}" for n in range(5)]


def test_unreachable_webhook_is_spooled_and_secret_never_logged(tmp_path, ledger):
    url = closed_port_url() + "?token=SUPERSECRETTOKEN"
    settings = settings_with(tmp_path, hook={"type": "webhook", "url": url, "timeout": 2})
    events = []
    alert = failing_twice(ledger)
    assert notify.deliver(alert, ["hook"], settings, lambda event, **fields: events.append(fields), ledger=ledger) == ["hook"]
    assert "refused" in events[0]["error"].lower()
    assert "SUPERSECRETTOKEN" not in json.dumps(events)
    assert notify.spooled(ledger) == {"hook": 1}


def test_old_spooled_alerts_become_dead_letters(tmp_path, ledger):
    settings = settings_with(tmp_path, hook={"type": "webhook", "url": closed_port_url(), "max_age": 0.2})
    notify.deliver(failing_twice(ledger), ["hook"], settings, ledger=ledger)
    time.sleep(0.3)
    assert notify.flush(settings, ledger=ledger) == []
    assert notify.spooled(ledger) == {}
    letters = ledger.dead_letters()
    assert [(letter["source"], letter["job"]) for letter in letters] == [("notify", "hook")]
    assert "Connection refused" in letters[0]["error"]


@pytest.mark.parametrize(
    ("route", "field", "message"),
    [
        ({"type": "webhook"}, "alert_routes.bad.url", "is required"),
        ({"type": "webhook", "url": "ftp://x"}, "alert_routes.bad.url", "http:// or https://"),
        ({"type": "teams", "url": "http://x"}, "alert_routes.bad.type", "must be one of"),
        ({"type": "email", "host": "mx", "sender": "a@b", "to": ["c@d"], "port": "smtp"}, "alert_routes.bad.port", "not an integer"),
        ({"type": "slack", "url": "http://x", "rate_limit": 0}, "alert_routes.bad.rate_limit", "at least 1"),
    ],
)
def test_bad_route_settings_name_the_field(tmp_path, ledger, route, field, message):
    settings = settings_with(tmp_path, bad=route)
    with pytest.raises(ConfigError) as error:
        notify.deliver(failing_twice(ledger), ["bad"], settings, ledger=ledger)
    assert error.value.field == field
    assert message in error.value.message
    assert notify.spooled(ledger) == {}


def test_unknown_route_is_a_config_error(tmp_path, ledger):
    with pytest.raises(ConfigError, match="unknown alert route 'nope'"):
        notify.deliver(failing_twice(ledger), ["nope"], settings_with(tmp_path), ledger=ledger)


def test_smtp_with_wrong_password_is_spooled_without_the_password(tmp_path, ledger, smtp_server):
    settings = settings_with(tmp_path, mail={"type": "email", "host": "127.0.0.1", "port": smtp_server.port, "sender": "c@web1",
                                             "to": ["ops@example.org"], "username": "alerts", "password": "wrong-password-42",
                                             "ca_file": smtp_server.ca_file})
    events = []
    assert notify.deliver(failing_twice(ledger), ["mail"], settings, lambda event, **f: events.append(f), ledger=ledger) == ["mail"]
    assert "SMTPAuthenticationError" in events[0]["error"]
    assert "wrong-password-42" not in json.dumps(events)


def test_next_job_run_delivers_what_an_earlier_run_spooled(caretaker_host, inbox):
    caretaker_host.write_settings(alert_routes={"pd": {"type": "pagerduty", "routing_key": "KEY-abc-123", "events_url": inbox.url("pd")}},
                                  default_routes=["pd"])
    caretaker_host.add_job("flaky", kind="command", args={"argv": ["false"]}, alert={"after": 2, "remind_hours": 5})
    inbox.fail("pd", 500)
    caretaker_host.run("flaky")
    caretaker_host.run("flaky")
    assert inbox.payloads("pd") == []
    inbox.recover("pd")
    caretaker_host.run("flaky")  # no new alert: the spooled trigger goes out now
    events = inbox.payloads("pd")
    assert [(event["event_action"], event["dedup_key"]) for event in events] == [("trigger", "caretaker/testhost/job:flaky")]
    log = json.dumps(caretaker_host.log_events("flaky"))
    assert "alert_sent" in log
    assert "KEY-abc-123" not in log
