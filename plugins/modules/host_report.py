#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_report
short_description: One host's record for the fleet report
version_added: 0.1.0
description:
  - Reads what the host knows about itself in one pass and returns it as one record (every job with its last result and,
    for check kinds, the check's own state and summary; per database the newest backup and the newest backup proven by a
    restore drill (ages, size, drill duration), a failed drill; certificates and days left; disk and inode use per file
    system; pending security and other updates and the reboot flag; dead letters with the oldest one's age; supervisor
    programs not running).
  - Every item carries C(observed_at) and C(ttl), how long the observation stays true (its job's schedule interval plus
    10% and 5 minutes, or a day for what is read live), so the report can show stale values as stale.
  - A host without the caretaker runtime still returns a record that says so in RV(record.errors).
  - Run it with the runtime's interpreter (C(/opt/caretaker/bin/python3)) so backup catalogs on S3 can be read;
    playbooks/report.yml does.
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  live_updates:
    description:
      - When no updates_info job keeps the host's pending updates, ask apt now (C(apt-get --simulate dist-upgrade), some
        seconds). When false, such a host's record has no updates items.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Read this host's record
  caretaker.ops.host_report:
  register: caretaker_record

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ caretaker_record.record['items'] | rejectattr('status', 'eq', 'ok') | map(attribute='message') | list }}"
"""

RETURN = r"""
record:
  description: The host's record.
  returned: always
  type: dict
  contains:
    host:
      description: The host name caretaker reports under.
      type: str
    observed_at:
      description: When the record was read, ISO 8601 UTC.
      type: str
    runtime:
      description: Whether the caretaker runtime is installed.
      type: bool
    status:
      description: The worst status of its items (C(ok), C(warning), C(unknown), C(critical)).
      type: str
    errors:
      description: What could not be read.
      type: list
      elements: str
    items:
      description:
        - One entry per thing observed, with C(area) (job, cert, backup, disk, inodes, updates, dead_letters, supervisor,
          deploy), C(name), C(status), C(message), C(observed_at), C(ttl) and, where it applies, C(value), C(unit) and
          limits. A deploy item's C(value) is the release the application serves.
      type: list
      elements: dict
  sample:
    host: web1
    observed_at: "2026-11-29T22:00:00Z"
    runtime: true
    status: critical
    errors: []
    items:
      - area: job
        name: monitoring-health
        status: critical
        message: "cron.service: inactive"
        observed_at: "2026-11-29T21:55:00Z"
        ttl: 630
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module
from ansible_collections.caretaker.ops.plugins.module_utils.report.record import HOST_REPORT


def main():
    run_as_module(AnsibleModule, HOST_REPORT)


if __name__ == "__main__":
    main()
