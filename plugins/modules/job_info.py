#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: job_info
short_description: Report a host's caretaker jobs, their last runs and dead letters
version_added: 0.1.0
description:
  - Reads the job files in C(/etc/caretaker/jobs) and the run ledger in C(/var/lib/caretaker/state.db)
    and returns what C(caretaker status --json) prints, for AWX surveys and fleet reports.
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  job:
    description: Report only this job.
    type: str
  runs:
    description: Include the last O(runs) runs (every attempt) of each job.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Report every job on the host
  caretaker.ops.job_info:
  register: caretaker_jobs

- name: Fail when a backup job has dead letters
  ansible.builtin.assert:
    that: caretaker_jobs.jobs | selectattr('dead_letters', 'gt', 0) | list | length == 0
    fail_msg: "dead letters: {{ caretaker_jobs.dead_letters | map(attribute='job') | join(', ') }}"

- name: Show the last five runs of one job
  caretaker.ops.job_info:
    job: nightly-backup
    runs: 5
"""

RETURN = r"""
host:
  description: The host name caretaker reports under.
  returned: always
  type: str
  sample: db1
jobs:
  description: One entry per job file.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Job name (the job file's name without C(.yml)).
      type: str
    kind:
      description: Job kind, the engine task the job runs.
      type: str
    valid:
      description: Whether the job file passed validation; when false, RV(jobs[].error) says why.
      type: bool
    error:
      description: Why the job file is invalid, or null.
      type: str
    running:
      description: Whether a run holds the job's lock now.
      type: bool
    last_run:
      description: Start of the last run, ISO 8601 UTC, or null if it never ran.
      type: str
    last_status:
      description: C(ok), C(failed), C(timeout), C(dead) or C(killed).
      type: str
    next_due:
      description: Next time the schedule fires, ISO 8601 local time.
      type: str
    dead_letters:
      description: Number of unacknowledged dead letters.
      type: int
    check:
      description:
        - For check kinds (health_check, cert_check, log_alert, updates_info), the check's own state from its last run,
          beside RV(jobs[].last_status) (which only says the job ran). Null for other kinds or before the first run.
        - C(status) is C(OK), C(WARNING), C(CRITICAL) or C(UNKNOWN) (a run that did not complete is C(UNKNOWN)); C(summary) is
          its one-line summary; C(since) is when it entered that state and C(observed) when it last ran (ISO 8601 UTC);
          C(findings) are the individual measurements.
      type: dict
  sample:
    - name: nightly-backup
      kind: command
      valid: true
      running: false
      last_run: "2026-11-23T03:17:00+00:00"
      last_status: ok
      next_due: "2026-11-24T03:17:00+00:00"
      dead_letters: 0
dead_letters:
  description: Runs that exhausted their retries and were not acknowledged (C(caretaker ack JOB)).
  returned: always
  type: list
  elements: dict
  sample:
    - job: nightly-backup
      ref: 3f2a9c1b0d4e
      source: runner
      created: "2026-11-23T03:17:00+00:00"
      error: exited with status 75
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module
from ansible_collections.caretaker.ops.plugins.module_utils.runner.job_info import JOB_INFO


def main():
    run_as_module(AnsibleModule, JOB_INFO)


if __name__ == "__main__":
    main()
