#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: file_cleanup
short_description: Delete old files under directories, safely, oldest first when a space target is set
version_added: 0.1.0
description:
  - Deletes regular files under O(paths) whose name matches O(patterns) and not O(excludes), older than
    O(age), or oldest first until O(min_free) or O(max_size) is met.
  - Never follows symlinks (directories are opened relative to their parent with C(O_NOFOLLOW)), never
    crosses mount points, skips files any process has open for writing or locked, refuses system
    directories such as C(/) or C(/etc) unless O(allow_system_paths=true), and deletes at most
    O(max_deletions) files per run.
  - Errors on single files (permission denied and the like) are reported in RV(errors), not fatal.
  - The same task runs on hosts as the caretaker job kind C(file_cleanup).
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
attributes:
  check_mode:
    support: full
    details: Returns the exact list of files and bytes that would be deleted.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Files older than O(age) when the first run ends are gone, so a second run deletes nothing new.
options:
  paths:
    description: Directories to clean (absolute). A missing directory is reported in RV(skipped).
    type: list
    elements: path
    required: true
  patterns:
    description: Shell patterns a file's name must match.
    type: list
    elements: str
    default: ["*"]
  excludes:
    description: Shell patterns of file and directory names to keep; an excluded directory is not entered.
    type: list
    elements: str
    default: []
  age:
    description:
      - Only files older than this are deleted, for example C(3600), C(30m), C(12h), C(7d), C(2w).
      - At least one of O(age), O(min_free) and O(max_size) is required.
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
  age_stamp:
    description: Which time stamp O(age) is measured on.
    type: str
    choices: [mtime, atime, ctime]
    default: mtime
  min_free:
    description: Delete oldest first until the filesystem has this much free, C(15%) or a size like C(2G).
    type: str
  max_size:
    description: Delete oldest first until the matching files take at most this much, for example C(500M).
    type: str
  recurse:
    description: Descend into subdirectories.
    type: bool
    default: true
  remove_empty_dirs:
    description: Remove subdirectories left empty (never the roots; with O(age), only those older than it).
    type: bool
    default: false
  skip_busy:
    description: Skip files a process has open for writing or holds a lock on (read once from C(/proc) per run).
    type: bool
    default: true
  max_deletions:
    description: Delete at most this many files per run; RV(capped) says when more were due.
    type: int
    default: 10000
  allow_system_paths:
    description: Allow cleaning system directories such as C(/), C(/etc), C(/usr) or C(/var).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Delete application temp files older than two days
  caretaker.ops.file_cleanup:
    paths: [/srv/app/tmp]
    patterns: ["*.tmp", "upload-*"]
    age: 2d
    remove_empty_dirs: true

- name: Keep 15% of the disk free by deleting the oldest cached exports
  caretaker.ops.file_cleanup:
    paths: [/srv/exports]
    patterns: ["*.csv.gz"]
    min_free: 15%

- name: Preview what a size budget would delete
  caretaker.ops.file_cleanup:
    paths: [/var/tmp/reports]
    max_size: 2G
  check_mode: true
  register: preview
"""

RETURN = r"""
files:
  description: Files deleted (or, in check mode, that would be deleted), in the order they went.
  returned: always
  type: list
  elements: str
  sample: [/srv/app/tmp/a.tmp]
deleted:
  description: Number of files in RV(files).
  returned: always
  type: int
  sample: 1
bytes_freed:
  description: Sum of the sizes of RV(files).
  returned: always
  type: int
  sample: 4096
dirs_removed:
  description: Empty directories removed (or that would be).
  returned: always
  type: list
  elements: str
errors:
  description: Files or directories that could not be read or deleted; the run goes on.
  returned: always
  type: list
  elements: dict
  sample: [{path: /srv/app/tmp/locked, error: Permission denied, errno: 13}]
skipped:
  description: Paths left alone on purpose, with the reason (busy, mount point, missing root).
  returned: always
  type: list
  elements: dict
  sample: [{path: /srv/app/tmp/current.log, reason: open for writing or locked}]
capped:
  description: Whether O(max_deletions) stopped the run before everything due was deleted.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.hygiene.file_cleanup import FILE_CLEANUP
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, FILE_CLEANUP)


if __name__ == "__main__":
    main()
