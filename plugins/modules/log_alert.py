#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: log_alert
short_description: Watch an application log for error-rate spikes, reading only what is new
version_added: 0.1.0
description:
  - Reads a log incrementally. Where it stopped (device, inode, a hash of the first line and the
    offset) is kept in the host's ledger, so each run reads only new complete lines, finishes a file
    rotated away (rename or copytruncate) before starting the new one, and never counts a line twice.
  - Each rule counts matching lines (a regular expression, or HTTP status codes and classes such as
    C(5xx) in common and combined access logs) over a rolling window of runs, as a count or as a
    percentage of all lines, with a minimum volume and an optional comparison with the same window
    a day (or O(rules[].baseline_offset)) earlier.
  - Runs as a scheduled caretaker job (kind C(log_alert)) whose alerts carry sample lines and the
    runbook; the module reports. Outside check mode the module advances the read position of the
    consumer C(adhoc), separate from any job's.
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
    details: In check mode the log is read and judged but the read position and counts are not stored.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Each run reads the lines written since the last one.
options:
  path:
    description: The log file.
    type: path
    required: true
  rules:
    description: What to count. Each rule becomes one finding named C(log:NAME).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Rule name, unique within the job.
        type: str
        required: true
      pattern:
        description: Python regular expression a line must contain. Set this or O(rules[].status).
        type: str
      status:
        description: HTTP status codes or classes (C(404), C(5xx)) in common or combined access-log lines.
        type: list
        elements: str
      measure:
        description: Grade the number of matching lines (C(count)) or their percentage of all lines (C(ratio)).
        type: str
        default: count
        choices: [count, ratio]
      warning:
        description: Count or percentage at or above which the rule warns.
        type: float
      critical:
        description: Count or percentage at or above which the rule is critical.
        type: float
      window:
        description:
          - Seconds of runs the rule sums over.
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 5m
      min_volume:
        description: Fewer lines than this in the window never alert.
        type: int
        default: 0
      baseline_factor:
        description: Alert only above this multiple of the same window O(rules[].baseline_offset) ago, when there is data for it.
        type: float
      baseline_offset:
        description:
          - How far back the baseline window lies; at least O(rules[].window).
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 1d
      ignore_case:
        description: Match O(rules[].pattern) without regard to case.
        type: bool
        default: false
  start_at:
    description: Where the first run starts reading, at the C(end) (only new lines count) or the C(beginning).
    type: str
    default: end
    choices: [end, beginning]
  samples:
    description: Matching lines kept per rule as examples for alerts.
    type: int
    default: 5
  runbook:
    description: Runbook URL included in alerts when run as a job.
    type: str
"""

EXAMPLES = r"""
- name: Page on a burst of server errors in the shop's access log
  caretaker.ops.log_alert:
    path: /var/log/nginx/shop.access.log
    rules:
      - name: server-errors
        status: [5xx]
        measure: ratio
        warning: 2
        critical: 10
        min_volume: 200
      - name: tracebacks
        pattern: "Traceback \\(most recent call last\\)"
        critical: 1
"""

RETURN = r"""
status:
  description: Worst status of all rules, C(ok), C(warning), C(unknown) or C(critical).
  returned: always
  type: str
  sample: critical
exit_code:
  description: The Nagios exit code of RV(status).
  returned: always
  type: int
summary:
  description: One line naming each rule that is not ok.
  returned: always
  type: str
findings:
  description: One entry per rule; C(details) holds the window's lines and matches, sample lines and this run's counts.
  returned: always
  type: list
  elements: dict
  sample:
    - name: log:server-errors
      status: critical
      message: 48 of 310 lines in the last 300s (15.48%)
      value: 15.48
      unit: "%"
      details:
        lines: 310
        matches: 48
        samples: ['203.0.113.9 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 502 0 "-" "curl/8"']
path:
  description: The log read.
  returned: when the log exists
  type: str
offset:
  description: Offset in the current file after the last complete line read.
  returned: when the log exists
  type: int
notes:
  description: What happened to the file since the last run (rotated, truncated, read the rest of a rotated file).
  returned: when the log exists
  type: list
  elements: str
kind:
  description: Always C(log_alert).
  returned: always
  type: str
alerts:
  description: Alerts sent; always empty from the module, which never alerts.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.checks.log_alert import LOG_ALERT
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, LOG_ALERT)


if __name__ == "__main__":
    main()
