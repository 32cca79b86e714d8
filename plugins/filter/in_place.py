# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare-first for a no-change run: what a role would write against what one find read.

A role names every file and directory it manages with the content, mode and owner it
would give them; one ansible.builtin.find on the host reads them all (type, mode, owner,
sha1). Only when something differs (a new input, or drift: an edited file, a changed mode)
does the role run the tasks that write, so a converge with nothing to change costs one round
trip per role instead of one or two per file.
"""

from __future__ import annotations

import hashlib

from ansible.errors import AnsibleFilterError

_KINDS = {"file": "isreg", "directory": "isdir", "link": "islnk"}


def _sha1(text):
    # The sha1 Ansible itself reports for a file: a comparison, not a security boundary.
    return hashlib.sha1(str(text).encode("utf-8"), usedforsecurity=False).hexdigest()


def out_of_place(found, want):
    """The paths in `want` that the find result `found` does not show exactly as wanted."""
    if not isinstance(found, dict) or not isinstance(found.get("files"), list):
        raise AnsibleFilterError("out_of_place: the input must be the registered result of ansible.builtin.find")
    have = {entry.get("path"): entry for entry in found["files"]}
    differ = []
    for item in want or []:
        if not isinstance(item, dict) or not item.get("path"):
            raise AnsibleFilterError(f"out_of_place: every wanted entry needs a path, got {item!r}")
        kind = item.get("state", "file")
        if kind not in _KINDS:
            raise AnsibleFilterError(f"out_of_place: {item['path']}: state must be one of {', '.join(_KINDS)}, got {kind!r}")
        entry = have.get(item["path"])
        if entry is None or not entry.get(_KINDS[kind]):
            differ.append(item["path"])
            continue
        if kind != "link" and (entry.get("mode") != item.get("mode") or entry.get("pw_name") != item.get("owner", "root")
                               or entry.get("gr_name") != item.get("group", "root")):
            differ.append(item["path"])
            continue
        expected = _sha1(item["content"]) if "content" in item else item.get("checksum")
        if kind == "file" and expected is not None and entry.get("checksum") != expected:
            differ.append(item["path"])
    return differ


class FilterModule:
    def filters(self):
        return {"out_of_place": out_of_place}
