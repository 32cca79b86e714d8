"""Rules many job kinds share, each raising ConfigError that names the field.

Each kind's Task.check applies them (with its own rules) when a job file or module
arguments are validated, before anything runs; they know nothing of services.
"""

from __future__ import annotations

import os
import re

from .errors import ConfigError


def at_least(value, minimum, field, source=None, what=""):
    """value >= minimum (None passes: the option is unset)."""
    if value is not None and value < minimum:
        raise ConfigError(f"must be at least {minimum:g}{what}, got {value:g}", field=field, source=source)


def positive(value, field, source=None):
    if value is not None and value <= 0:
        raise ConfigError(f"must be positive, got {value:g}", field=field, source=source)


def between(value, low, high, field, source=None):
    if value is not None and not low <= value <= high:
        raise ConfigError(f"must be between {low:g} and {high:g}, got {value:g}", field=field, source=source)


def port(value, field):
    between(value, 1, 65535, field)


def not_empty(values, field, what):
    if not values:
        raise ConfigError(f"must list at least one {what}", field=field)


def absolute(path, field):
    if path is not None and not os.path.isabs(path):
        raise ConfigError(f"{path!r} must be an absolute path", field=field)


def regex(pattern, field, flags=0):
    """The compiled pattern, or ConfigError quoting the pattern and re's reason."""
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"{pattern!r} is not a valid regular expression: {exc}", field=field) from None


def http_url(url, field):
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ConfigError(f"must be an http:// or https:// URL, got {url!r}", field=field)


def check_routes(settings, names, field, source=None):
    """Every alert route named must be defined in the host settings (caretaker.yml alert_routes)."""
    if settings is None or names is None:
        return
    for index, name in enumerate(names):
        if name not in settings.alert_routes:
            known = ", ".join(sorted(settings.alert_routes)) or "none configured"
            raise ConfigError(f"alert route {name!r} is not in the host settings' alert_routes (known: {known})",
                              field=f"{field}[{index}]", source=source)
