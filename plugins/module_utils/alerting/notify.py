"""Deliver alerts to the routes configured in caretaker.yml (alert_routes).

Every alert is written to a spool table in the host's ledger first, then sent. What a
route cannot take now (it is down, or its rate limit is used up) stays in the spool and
goes out, oldest first, on the next run, so a webhook that is down for an hour loses
nothing. Spooled alerts older than a route's `max_age` become dead letters.

Route types: slack (incoming webhook), pagerduty (Events API v2), webhook (JSON POST)
and email (SMTP with STARTTLS and login). Secrets (URLs with tokens, routing keys,
passwords, headers) never reach logs or output: errors are scrubbed of them.
"""

from __future__ import annotations

import json
import time

from ..foundation import argspec
from ..foundation.errors import ConfigError
from ..foundation.timestamps import iso

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

_COMMON = {
    "type": {"type": "str", "default": "webhook", "choices": ["webhook", "slack", "pagerduty", "email"]},
    "timeout": {"type": "float", "default": 10.0},
    "rate_limit": {"type": "int", "default": 30},  # messages per rate_period
    "rate_period": {"type": "float", "default": 60.0},
    "max_age": {"type": "float", "default": 7 * 86400.0},  # seconds an alert may wait in the spool
}

ROUTE_SPECS = {
    "webhook": {**_COMMON, "url": {"type": "str", "required": True, "no_log": True}, "headers": {"type": "dict", "default": {}, "no_log": True}},
    "slack": {**_COMMON, "url": {"type": "str", "required": True, "no_log": True}, "channel": {"type": "str"}, "username": {"type": "str"}},
    "pagerduty": {
        **_COMMON,
        "routing_key": {"type": "str", "required": True, "no_log": True},
        "events_url": {"type": "str", "default": PAGERDUTY_EVENTS_URL},
    },
    "email": {
        **_COMMON,
        "host": {"type": "str", "required": True},
        "port": {"type": "int", "default": 587},
        "security": {"type": "str", "default": "starttls", "choices": ["starttls", "ssl", "none"]},
        "username": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "sender": {"type": "str", "required": True},
        "to": {"type": "list", "elements": "str", "required": True},
        "ca_file": {"type": "path"},
    },
}


class DeliveryError(Exception):
    """A route did not take an alert; the message is already free of secrets."""


def route_config(settings, name):
    """The named route's settings, validated; ConfigError names the field."""
    raw = settings.alert_routes.get(name)
    if raw is None:
        known = ", ".join(sorted(settings.alert_routes)) or "none configured"
        raise ConfigError(f"unknown alert route {name!r} (known: {known})", field="alert.routes")
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping", field=f"alert_routes.{name}")
    kind = raw.get("type", "webhook")
    if kind not in ROUTE_SPECS:
        raise ConfigError(f"must be one of {', '.join(ROUTE_SPECS)}, got {kind!r}", field=f"alert_routes.{name}.type")
    route = argspec.validate(ROUTE_SPECS[kind], raw, prefix=f"alert_routes.{name}.")
    for key in ("url", "events_url"):
        if route.get(key) and not route[key].startswith(("http://", "https://")):
            raise ConfigError("must be an http:// or https:// URL", field=f"alert_routes.{name}.{key}")
    if route["rate_limit"] < 1:
        raise ConfigError("must be at least 1", field=f"alert_routes.{name}.rate_limit")
    return route


def _secrets(route):
    values = []
    for key, rules in ROUTE_SPECS[route["type"]].items():
        value = route.get(key)
        if rules.get("no_log") and value:
            values.extend(str(item) for item in (value.values() if isinstance(value, dict) else [value]))
    return [value for value in values if len(value) >= 4]


def scrub(text, route):
    for secret in _secrets(route):
        text = text.replace(secret, "********")
    return text


# -- payloads ---------------------------------------------------------------------


def headline(alert):
    if alert["action"] == "resolve":
        return f"RESOLVED {alert['host']} {alert['check']}: {alert['summary']}"
    prefix = "REMINDER " if alert.get("reason") == "reminder" else ""
    return f"{prefix}{alert['severity'].upper()} {alert['host']} {alert['check']}: {alert['summary']}"


def dedup_key(alert):
    """Stable per host and check, so PagerDuty folds triggers and matches the resolve."""
    return f"caretaker/{alert['host']}/{alert['check']}"


def details_text(details, limit=2500):
    """Details for people: one `key: value` line each, lists (sample log lines) one item a line."""
    lines = []
    for key, value in details.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"  {item}" for item in value)
        elif isinstance(value, dict):
            lines.append(f"{key}: {json.dumps(value, default=str)}")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)[:limit]


def webhook_payload(alert):
    return {**alert, "first_seen_iso": iso(alert.get("first_seen")), "ts_iso": iso(alert.get("ts"))}


def slack_payload(alert, route):
    colors = {"ok": "good", "warning": "warning", "critical": "danger", "unknown": "#808080"}
    fields = [
        {"title": "Host", "value": alert["host"], "short": True},
        {"title": "Check", "value": alert["check"], "short": True},
        {"title": "First seen", "value": iso(alert.get("first_seen")) or "-", "short": True},
    ]
    if alert.get("runbook"):
        fields.append({"title": "Runbook", "value": alert["runbook"], "short": False})
    if alert.get("details"):
        fields.append({"title": "Details", "value": "```" + details_text(alert["details"]) + "```", "short": False})
    payload = {"text": headline(alert), "attachments": [{"color": colors.get(alert["severity"], "danger"), "fields": fields}]}
    if route.get("channel"):
        payload["channel"] = route["channel"]
    if route.get("username"):
        payload["username"] = route["username"]
    return payload


def pagerduty_payload(alert, route):
    event = {"routing_key": route["routing_key"], "dedup_key": dedup_key(alert)}
    if alert["action"] == "resolve":
        return {**event, "event_action": "resolve"}
    severity = {"warning": "warning", "critical": "critical"}.get(alert["severity"], "error")
    details = {**alert.get("details", {}), "first_seen": iso(alert.get("first_seen")), "reason": alert.get("reason")}
    event.update(
        event_action="trigger",
        payload={
            "summary": headline(alert)[:1024],
            "source": alert["host"],
            "severity": severity,
            "component": alert["check"],
            "timestamp": iso(alert.get("ts")),
            "custom_details": details,
        },
    )
    if alert.get("runbook"):
        event["links"] = [{"href": alert["runbook"], "text": "Runbook"}]
    return event


def email_message(alert, route):
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "[caretaker] " + headline(alert)[:200]
    message["From"] = route["sender"]
    message["To"] = ", ".join(route["to"])
    lines = [
        headline(alert),
        "",
        f"Host:       {alert['host']}",
        f"Check:      {alert['check']}",
        f"Severity:   {alert['severity']}",
        f"First seen: {iso(alert.get('first_seen')) or '-'}",
    ]
    if alert.get("runbook"):
        lines.append(f"Runbook:    {alert['runbook']}")
    if alert.get("details"):
        lines += ["", details_text(alert["details"], limit=20000)]
    message.set_content("\n".join(lines) + "\n")
    return message


# -- channels ---------------------------------------------------------------------


def post_json(url, payload, timeout=10.0, headers=None):
    import urllib.request

    data = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.build_opener().open(request, timeout=timeout) as response:
        return response.status


def _send_email(route, alert):
    import smtplib
    import ssl

    context = ssl.create_default_context(cafile=route["ca_file"])
    if route["security"] == "ssl":
        client = smtplib.SMTP_SSL(route["host"], route["port"], timeout=route["timeout"], context=context)
    else:
        client = smtplib.SMTP(route["host"], route["port"], timeout=route["timeout"])
    with client:
        if route["security"] == "starttls":
            client.starttls(context=context)
        if route["username"]:
            client.login(route["username"], route["password"] or "")
        client.send_message(email_message(alert, route))


def send(route, alert):
    """Send one alert (a dict) through one route; raise DeliveryError on any failure."""
    import smtplib
    import urllib.error

    try:
        if route["type"] == "email":
            _send_email(route, alert)
        elif route["type"] == "slack":
            post_json(route["url"], slack_payload(alert, route), route["timeout"])
        elif route["type"] == "pagerduty":
            post_json(route["events_url"], pagerduty_payload(alert, route), route["timeout"])
        else:
            post_json(route["url"], webhook_payload(alert), route["timeout"], route["headers"])
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        raise DeliveryError(scrub(f"{type(exc).__name__}: {exc}", route)) from None


# -- spool ------------------------------------------------------------------------


def _open_ledger(settings, ledger):
    if ledger is not None:
        return ledger, False
    from ..foundation.ledger import Ledger

    return Ledger(settings.database), True


def deliver(alert, route_names, settings, log=None, ledger=None):
    """Spool alert for each named route and send what the routes will take now.

    Returns the names of routes that still hold undelivered alerts. Bad route settings
    raise ConfigError before anything is spooled; delivery failures never raise.
    """
    routes = {name: route_config(settings, name) for name in route_names}
    ledger, own = _open_ledger(settings, ledger)
    try:
        payload = json.dumps(alert.to_dict(), default=str)
        for name in routes:
            ledger.spool_alert(name, payload)
        return flush(settings, log, ledger, only=list(routes))
    finally:
        if own:
            ledger.close()


def flush(settings, log=None, ledger=None, only=None):
    """Send spooled alerts, oldest first, within each route's rate limit; return routes left pending."""
    ledger, own = _open_ledger(settings, ledger)
    log = log or (lambda event, **fields: None)
    pending = []
    try:
        for name in ledger.spooled_routes():
            if only is not None and name not in only:
                continue
            if not _flush_route(settings, ledger, name, log):
                pending.append(name)
        ledger.forget_sent(before=time.time() - 86400)
        return pending
    finally:
        if own:
            ledger.close()


def _flush_route(settings, ledger, name, log):
    """Send what one route will take; True when its spool is empty afterwards."""
    try:
        route = route_config(settings, name)
    except ConfigError as exc:  # the route was removed or broken since the alert was spooled
        log("alert_delivery_failed", route=name, error=exc.message)
        return False
    rows = ledger.spooled_alerts(name)
    for row in rows:
        now = time.time()
        if now - row["created"] > route["max_age"]:
            ledger.add_dead_letter("notify", name, str(row["id"]), f"undelivered after {route['max_age']:.0f}s: {row['last_error']}")
            ledger.unspool_alert(row["id"])
            log("alert_expired", route=name, spool_id=row["id"])
            continue
        sent = ledger.sent_since(name, now - route["rate_period"])
        if sent >= route["rate_limit"]:
            log("alert_rate_limited", route=name, waiting=len(rows))
            return False
        alert = json.loads(row["payload"])
        try:
            send(route, alert)
        except DeliveryError as exc:
            ledger.spool_failed(row["id"], str(exc))
            log("alert_delivery_failed", route=name, error=str(exc), spooled=True)
            return False  # keep order: the rest waits behind this one
        ledger.unspool_alert(row["id"], route=name)
        log("alert_sent", route=name, key=alert["key"], action=alert["action"], attempts=row["attempts"] + 1)
    return True


def spooled(ledger):
    """Undelivered alerts per route, for status reports and tests."""
    return ledger.spooled_alerts()
