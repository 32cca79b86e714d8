# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the roles use to turn job lists into schedules, with the engine's own parser."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.caretaker.ops.plugins.module_utils.foundation.errors import ConfigError
from ansible_collections.caretaker.ops.plugins.module_utils.foundation.schedule import parse_cron, spread, to_oncalendar


def cron_spread(expr, seed):
    """Resolve H and H/N in a cron expression with values seeded by host and job."""
    try:
        resolved = spread(str(expr), str(seed))
        parse_cron(resolved)
    except ConfigError as exc:
        raise AnsibleFilterError(f"schedule {expr!r}: {exc.message}") from None
    return resolved


def cron_to_oncalendar(expr):
    """The systemd OnCalendar= value for a (resolved) cron expression."""
    try:
        return to_oncalendar(str(expr))
    except ConfigError as exc:
        raise AnsibleFilterError(f"schedule {expr!r}: {exc.message}") from None


def merge_by_name(*lists, defaults=None):
    """Merge lists of dicts by their `name`: a later entry updates an earlier one of the same name.

    This is how role_config, role_group_config and role_host_config combine, so a fleet
    is configured at the inventory level where a thing is true. Every entry starts from
    `defaults` (the role's values for options an entry leaves out).
    """
    merged = {}
    for items in lists:
        for item in items or []:
            if not isinstance(item, dict) or "name" not in item:
                raise AnsibleFilterError(f"every entry needs a name, got {item!r}")
            merged.setdefault(item["name"], dict(defaults or {})).update(item)
    return list(merged.values())


class FilterModule:
    def filters(self):
        return {
            "cron_spread": cron_spread,
            "cron_to_oncalendar": cron_to_oncalendar,
            "merge_by_name": merge_by_name,
        }
