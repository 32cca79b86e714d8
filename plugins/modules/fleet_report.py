#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Merge host records into the fleet report, one self-contained HTML file and its JSON
version_added: 0.1.0
description:
  - Run on the controller (C(delegate_to localhost), C(run_once)) after M(caretaker.ops.host_report) wrote one record per
    host as JSON into O(records_dir); playbooks/report.yml does both.
  - Hosts are listed worst first (critical, unreachable, unknown, warning, ok); a summary per inventory group; the problems
    and recoveries since the previous report; every value with when it was observed. A value older than its expected
    interval is stale and shown as unknown, never green.
  - A host in O(inventory) without a record, or listed in O(unreachable), stays in the report marked unreachable, with its
    items from the previous report.
  - A missing or corrupt previous report or record file still gives a report; RV(notes) names what could not be read.
  - The HTML has no external assets (inline CSS, JavaScript and SVG, the data embedded as JSON); it opens from a file,
    offline.
requirements:
  - None beyond the Python standard library (it runs on the controller).
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
attributes:
  check_mode:
    support: full
    details: Builds the report and returns its summary, but writes no file.
  diff_mode:
    support: none
    details: The report changes on every run (it carries its time); a diff would say nothing.
  idempotent:
    support: none
    details: Every run writes a new report.
options:
  records_dir:
    description: Directory of host records, one C(HOST.json) file each (the JSON of RV(caretaker.ops.host_report#module:record)).
    type: path
    required: true
  html_path:
    description: Where to write the HTML page.
    type: path
    required: true
  json_path:
    description: Where to write the report as JSON; the report already there is the previous one unless O(previous) is set.
    type: path
    required: true
  previous:
    description: The previous report's JSON, to compare with and to take unreachable hosts' last records from.
    type: path
  inventory:
    description: Every host of the report and its groups; hosts here without a record are unreachable.
    type: dict
    default: {}
  unreachable:
    description: Hosts the play could not reach; their records (if any) are ignored in favour of the previous report's.
    type: list
    elements: str
    default: []
  notes:
    description: What the play could not read, to show on the report.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Render the fleet report on the controller
  caretaker.ops.fleet_report:
    records_dir: /srv/reports/records
    html_path: /srv/reports/fleet.html
    json_path: /srv/reports/fleet.json
    inventory: "{{ dict(groups['all'] | zip(groups['all'] | map('extract', hostvars, 'group_names'))) }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
summary:
  description: Hosts in total and per state.
  returned: always
  type: dict
  sample: {hosts: 3, ok: 1, warning: 0, unknown: 0, unreachable: 1, critical: 1}
groups:
  description: Per inventory group, hosts in total and per state.
  returned: always
  type: dict
releases:
  description:
    - Per application deployed with caretaker, the hosts serving each release, and C(mixed) when they serve more
      than one (a deploy stopped half way, a host left behind).
  returned: always
  type: dict
  sample: {sample: {releases: {v1: [app3], v2: [app1, app2]}, mixed: true}}
changes:
  description: C(previous) (when the previous report was written), C(new) problems and C(recovered) items.
  returned: always
  type: dict
notes:
  description: What could not be read (previous report, record files, unreachable hosts).
  returned: always
  type: list
  elements: str
text:
  description: A one-screen text summary, worst hosts first.
  returned: always
  type: str
html_path:
  description: The HTML page written.
  returned: always
  type: str
json_path:
  description: The JSON written.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module
from ansible_collections.caretaker.ops.plugins.module_utils.report.render import FLEET_REPORT


def main():
    run_as_module(AnsibleModule, FLEET_REPORT)


if __name__ == "__main__":
    main()
