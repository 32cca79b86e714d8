# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def merge_by_name(levels, defaults=None):
    """Merge lists of dicts level by level: a later entry with the same name updates the earlier one.

    Every entry starts from defaults. An entry whose merged state is 'absent' is left out, so a
    host can drop what its group declares.
    """
    merged = {}
    for level_index, level in enumerate(levels):
        if level is None:
            continue
        if not isinstance(level, list):
            raise AnsibleFilterError(f"merge_by_name: level {level_index} must be a list, got {type(level).__name__}")
        for entry_index, entry in enumerate(level):
            if not isinstance(entry, dict) or not entry.get("name"):
                raise AnsibleFilterError(f"merge_by_name: entry {entry_index} of level {level_index} needs a name")
            name = str(entry["name"])
            merged[name] = {**merged.get(name, defaults or {}), **entry}
    return [entry for entry in merged.values() if entry.get("state", "present") != "absent"]


class FilterModule:
    def filters(self):
        return {"merge_by_name": merge_by_name}
