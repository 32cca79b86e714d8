# Private to the caretaker.ops collection: the engine's API may change without notice.
"""Deliver alerts to the routes configured in caretaker.yml (alert_routes)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .errors import ConfigError

ROUTE_TYPES = ("webhook",)


def post_json(url, payload, timeout=10.0, headers=None):
    data = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def _webhook(route, alert):
    post_json(route["url"], alert.to_dict(), timeout=route.get("timeout", 10.0), headers=route.get("headers"))


CHANNELS = {"webhook": _webhook}


def deliver(alert, route_names, settings, log=None):
    """Send alert to each named route; return the names that failed (never raises on delivery)."""
    failed = []
    for name in route_names:
        route = settings.alert_routes.get(name)
        if route is None:
            raise ConfigError(f"unknown alert route {name!r}", field="alert.routes")
        channel = CHANNELS.get(route.get("type", "webhook"))
        if channel is None:
            raise ConfigError(f"unsupported route type {route.get('type')!r}", field=f"alert_routes.{name}.type")
        try:
            channel(route, alert)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            failed.append(name)
            if log:
                log("alert_delivery_failed", route=name, error=str(exc))
    return failed
