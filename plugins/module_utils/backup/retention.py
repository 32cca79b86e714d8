"""Which backups to keep: a pure planner, so check mode can show the exact plan.

Tiers (keep_last, daily, weekly, monthly, yearly) choose what to keep; max_age drops
older ones from the tiers. Then three guarantees override everything: the newest backup
stays, the newest backup that passed a restore drill stays, and at least min_keep stay.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from ..foundation import durations
from ..foundation.errors import ConfigError

POLICY_SPEC = {
    "keep_last": {"type": "int", "default": 7},
    "keep_daily": {"type": "int", "default": 7},
    "keep_weekly": {"type": "int", "default": 4},
    "keep_monthly": {"type": "int", "default": 6},
    "keep_yearly": {"type": "int", "default": 0},
    "max_age": durations.option(),
    "max_age_days": durations.renamed("max_age", "d"),
    "min_keep": {"type": "int", "default": 1},
    "stale_upload": durations.option(default="1d"),
    "stale_upload_hours": durations.renamed("stale_upload", "h"),
}
TIERS = ("keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
COUNTS = ("keep_last", *TIERS, "min_keep")

PERIODS = {
    "keep_daily": lambda time: time.date(),
    "keep_weekly": lambda time: time.isocalendar()[:2],
    "keep_monthly": lambda time: (time.year, time.month),
    "keep_yearly": lambda time: time.year,
}


@dataclass(frozen=True)
class Backup:
    id: str
    time: datetime.datetime
    verified: bool = False


@dataclass
class Plan:
    keep: dict = field(default_factory=dict)  # id -> reasons
    delete: list = field(default_factory=list)  # ids, oldest first


def check_policy(policy: dict, source: str | None = None):
    """Refuse policies that are nonsense or would keep nothing, before anything runs."""
    for name in COUNTS:
        if policy[name] < 0:
            raise ConfigError(f"must not be negative, got {policy[name]}", field=name, source=source)
    if policy["min_keep"] < 1:
        raise ConfigError("must be at least 1: a retention policy must never delete every backup", field="min_keep", source=source)
    if policy["keep_last"] == 0 and not any(policy[tier] for tier in TIERS):
        raise ConfigError(
            "the retention policy keeps nothing: set keep_last or a keep_daily/weekly/monthly/yearly tier above 0", field="keep_last", source=source
        )
    if policy.get("max_age") is not None and policy["max_age"] < 86400:
        raise ConfigError(f"must be at least 1d, got {durations.text(policy['max_age'])}", field="max_age", source=source)


def plan(backups: list[Backup], policy: dict, now: datetime.datetime) -> Plan:
    newest_first = sorted(backups, key=lambda backup: (backup.time, backup.id), reverse=True)
    keep: dict[str, list[str]] = {}

    def mark(backup, reason):
        keep.setdefault(backup.id, []).append(reason)

    max_age = policy.get("max_age")
    oldest_allowed = now - datetime.timedelta(seconds=max_age) if max_age else None
    eligible = [backup for backup in newest_first if oldest_allowed is None or backup.time >= oldest_allowed]
    for backup in eligible[: policy["keep_last"]]:
        mark(backup, "keep_last")
    for tier in TIERS:
        wanted = policy[tier]
        seen = set()
        for backup in eligible:
            if len(seen) >= wanted:
                break
            period = PERIODS[tier](backup.time)
            if period not in seen:
                seen.add(period)
                mark(backup, tier)
    if newest_first:
        mark(newest_first[0], "newest")
    verified = [backup for backup in newest_first if backup.verified]
    if verified:
        mark(verified[0], "newest_verified")
    for backup in newest_first:
        if len(keep) >= policy["min_keep"]:
            break
        if backup.id not in keep:
            mark(backup, "min_keep")
    delete = [backup.id for backup in reversed(newest_first) if backup.id not in keep]
    return Plan(keep=keep, delete=delete)
