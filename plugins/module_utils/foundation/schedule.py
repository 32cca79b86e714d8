"""Cron schedules: parse, spread a fleet with H, find the next run, translate to systemd.

`H` in the minute or hour field stands for a value derived from a seed (the host and job
name), as in Jenkins, so a fleet given "H 3 * * *" does not start at 03:00 all at once;
`H/N` is every N from a seeded offset ("H/5": minute 3, 8, 13, ... on one host, 1, 6, 11,
... on another), so checks every five minutes do not all fire in the same second.
"""

from __future__ import annotations

import datetime

from .errors import ConfigError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def spread(expr: str, seed: str, source: str | None = None) -> str:
    """Replace H and H/N in the minute and hour fields with values seeded by `seed`."""
    import hashlib  # deferred: `caretaker run` validates schedules but never spreads them

    expr = ALIASES.get(expr.strip(), expr.strip())
    parts = expr.split()
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    for index, (name, low, high) in enumerate(FIELDS[:2]):
        part = parts[index] if index < len(parts) else ""
        seeded = digest >> (16 * index)
        if part == "H":
            parts[index] = str(low + seeded % (high - low + 1))
        elif part.startswith("H/"):
            step = part[2:]
            if not step.isdigit() or not 0 < int(step) <= high - low + 1:
                raise ConfigError(f"bad step {step!r} in {part!r}: H/N needs N from 1 to {high - low + 1} in the {name} field",
                                  field="schedule", source=source)
            parts[index] = f"{low + seeded % int(step)}-{high}/{step}"
    return " ".join(parts)


def _parse_field(text, name, low, high, source):
    values = set()
    for item in text.split(","):
        step = 1
        if "/" in item:
            item, step_text = item.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"bad step {step_text!r} in the {name} field", field="schedule", source=source)
            step = int(step_text)
        if item == "*":
            start, end = low, high
        elif "-" in item:
            start_text, end_text = item.split("-", 1)
            start, end = _number(start_text, name, source), _number(end_text, name, source)
        else:
            start = _number(item, name, source)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ConfigError(f"{item!r} is outside {low}-{high} in the {name} field", field="schedule", source=source)
        values.update(range(start, end + 1, step))
    return values


def _number(text, name, source):
    if not text.isdigit():
        raise ConfigError(f"{text!r} is not a number in the {name} field", field="schedule", source=source)
    return int(text)


def parse_cron(expr: str, source: str | None = None):
    """Return (minutes, hours, days, months, weekdays, day_restricted, weekday_restricted)."""
    expr = ALIASES.get(expr.strip(), expr.strip())
    parts = expr.split()
    if len(parts) != 5:
        raise ConfigError(f"{expr!r} needs 5 fields (minute hour day month weekday)", field="schedule", source=source)
    if any(part == "H" or part.startswith("H/") for part in parts):
        raise ConfigError("H must be resolved with spread() before use", field="schedule", source=source)
    sets = [_parse_field(part, *spec, source) for part, spec in zip(parts, FIELDS, strict=True)]
    if 7 in sets[4]:
        sets[4] = (sets[4] - {7}) | {0}
    return (*sets, parts[2] != "*", parts[4] != "*")


def next_due(expr: str, after: datetime.datetime) -> datetime.datetime | None:
    """The first time strictly after `after` (local, naive) that matches expr."""
    minutes, hours, days, months, weekdays, day_set, weekday_set = parse_cron(expr)
    start = after.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    day = start.date()
    for _day in range(366 * 5):
        cron_weekday = (day.weekday() + 1) % 7
        in_days, in_weekdays = day.day in days, cron_weekday in weekdays
        # cron ORs the two day fields when both are restricted, ANDs them otherwise
        day_ok = (in_days or in_weekdays) if day_set and weekday_set else (in_days and in_weekdays)
        if day.month in months and day_ok:
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    candidate = datetime.datetime.combine(day, datetime.time(hour, minute))
                    if candidate >= start:
                        return candidate
        day += datetime.timedelta(days=1)
    return None


def to_oncalendar(expr: str) -> str:
    """A systemd OnCalendar= value that fires at the same times as the cron expression."""
    minutes, hours, days, months, weekdays, day_set, weekday_set = parse_cron(expr)
    if day_set and weekday_set:
        raise ConfigError("systemd timers cannot express cron's day-of-month OR day-of-week", field="schedule")
    parts = expr.split() if not expr.startswith("@") else ALIASES[expr].split()

    def listed(values, text, width=2):
        return "*" if text == "*" else ",".join(f"{value:0{width}d}" for value in sorted(values))

    calendar = f"*-{listed(months, parts[3])}-{listed(days, parts[2])} {listed(hours, parts[1])}:{listed(minutes, parts[0])}:00"
    if weekday_set:
        calendar = ",".join(DAY_NAMES[day] for day in sorted(weekdays)) + " " + calendar
    return calendar
