"""The one grammar for durations and ages, used by every option that takes one.

A duration is a number of seconds (`90`, `2.5`), or a number followed by one unit:
`s` seconds, `m` minutes, `h` hours, `d` days, `w` weeks (`30m`, `1.5d`, `2w`).
Fractions are allowed; negative numbers are not. Units are lower case only: `M` would
read as months to many people, and a retention of `6M` silently meaning six minutes is
the kind of mistake this refuses. Spaces around the number and unit are ignored.

An argument spec marks an option as a duration with `option()` (type `raw`, so the same
spec stays valid for AnsibleModule); argspec.validate converts it to float seconds.
"""

from __future__ import annotations

import math
import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_GRAMMAR = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]?)\s*")
HELP = "a number of seconds, or a number with s, m, h, d or w (e.g. 90, 30m, 1.5d, 2w)"


def parse(value) -> float:
    """A duration -> float seconds; ValueError saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a duration; use {HELP}")
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration: it must be a finite number, not negative")
        return float(value)
    match = _GRAMMAR.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration; use {HELP}")
    number, unit = match.groups()
    if unit and unit not in UNITS:
        hint = " (units are lower case)" if unit.lower() in UNITS else ""
        raise ValueError(f"{value!r} has an unknown unit {unit!r}{hint}; use {HELP}")
    return float(number) * UNITS[unit or "s"]


def text(seconds: float) -> str:
    """Seconds as the shortest duration that says them exactly: 86400 -> '1d', 90 -> '90s'."""
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % UNITS[unit] == 0:
            return f"{int(seconds // UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def rough(seconds: float) -> str:
    """An age to read at a glance, one decimal in its largest unit: '1.5d', '3.0h', '12.0m', '40s'."""
    for unit in ("d", "h", "m"):
        if seconds >= UNITS[unit]:
            return f"{seconds / UNITS[unit]:.1f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def option(**rules) -> dict:
    """An argument spec entry for a duration; AnsibleModule passes it through as `raw`."""
    return {"type": "raw", "context": {"type": "duration"}, **rules}


def durations(**rules) -> dict:
    """An argument spec entry for a list of durations."""
    return {"type": "list", "elements": "raw", "context": {"elements": "duration"}, **rules}


def renamed(new: str, unit: str, **rules) -> dict:
    """A deprecated option whose name carried its unit (max_age_days), folded into `new`.

    The old option keeps meaning a plain number of `unit`; argspec.validate moves its value,
    in seconds, to the new option.
    """
    return {"type": "float", "context": {"renamed_to": new, "unit": unit}, **rules}
