#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: job_sync
short_description: Make one owner's caretaker jobs and their schedules match a declared list
version_added: 0.1.0
description:
  - Sends the whole list to C(caretaker install-jobs) on the host, which validates every job
    before it writes any, writes job files, cron entries or systemd units atomically, starts
    new timers, and removes the jobs of O(owner) that are no longer listed, with their schedules.
  - One task whatever the number of jobs; a run with nothing to change writes nothing.
  - The validation runs in the caretaker runtime (caretaker.ops.runtime), whose virtualenv
    holds every library the job kinds need.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
attributes:
  check_mode:
    support: full
    details: Reports the files it would write and remove; on a host without the runtime yet, reports a change without validating.
  diff_mode:
    support: full
  idempotent:
    support: full
requirements:
  - the caretaker runtime on the host (role caretaker.ops.runtime)
options:
  jobs:
    description:
      - The jobs, each with C(name), C(kind) and optionally C(args), C(description), C(schedule)
        (cron; C(H) in the minute or hour field is seeded by O(seed) and the job name),
        C(timeout), C(kill_grace), C(retry), C(alert), C(ping) and C(state) (C(present) or C(absent)).
    type: list
    elements: dict
    required: true
  owner:
    description: Who manages these jobs; only this owner's jobs are removed when no longer listed.
    type: str
    required: true
  scheduler:
    description: C(cron) writes C(/etc/cron.d/caretaker-NAME); C(systemd) a service and a timer per job. Never both.
    type: str
    choices: [cron, systemd]
    default: cron
  seed:
    description: What C(H) in a schedule is seeded with besides the job name, usually the inventory host name.
    type: str
    required: true
  command:
    description: The C(caretaker) command on the host.
    type: path
    default: /usr/local/bin/caretaker
  etc:
    description: The caretaker configuration directory, when not C(/etc/caretaker).
    type: path
  randomized_delay_sec:
    description: systemd timers only, spread start times by up to this many seconds.
    type: int
    default: 60
  cron_dir:
    description: Where cron entries go.
    type: path
    default: /etc/cron.d
  unit_dir:
    description: Where systemd units go.
    type: path
    default: /etc/systemd/system
"""

EXAMPLES = r"""
- name: Install two jobs scheduled by cron
  caretaker.ops.job_sync:
    owner: site
    seed: "{{ inventory_hostname }}"
    jobs:
      - name: disk-report
        kind: command
        args: {argv: [df, -h]}
        schedule: "H */6 * * *"
      - name: old-report
        state: absent
"""

RETURN = r"""
written:
  description: Files written (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [/etc/caretaker/jobs/disk-report.yml, /etc/cron.d/caretaker-disk-report]
removed:
  description: Files removed (or that would be).
  returned: always
  type: list
  elements: str
started:
  description: systemd timers enabled and started.
  returned: always
  type: list
  elements: str
stopped:
  description: systemd timers stopped and disabled.
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "jobs": {"type": "list", "elements": "dict", "required": True},
            "owner": {"type": "str", "required": True},
            "scheduler": {"type": "str", "choices": ["cron", "systemd"], "default": "cron"},
            "seed": {"type": "str", "required": True},
            "command": {"type": "path", "default": "/usr/local/bin/caretaker"},
            "etc": {"type": "path"},
            "randomized_delay_sec": {"type": "int", "default": 60},
            "cron_dir": {"type": "path", "default": "/etc/cron.d"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.exists(params["command"]):
        if module.check_mode:
            module.exit_json(changed=True, written=[], removed=[], started=[], stopped=[],
                             msg=f"{params['command']} is not installed yet; the jobs are validated when it is")
        module.fail_json(msg=f"{params['command']} not found: apply caretaker.ops.runtime first")
    request = {key: params[key] for key in ("jobs", "owner", "scheduler", "seed", "command", "randomized_delay_sec",
                                            "cron_dir", "unit_dir")}
    argv = [params["command"]] + (["--etc", params["etc"]] if params["etc"] else []) + ["install-jobs"]
    argv += (["--check"] if module.check_mode else []) + (["--diff"] if module._diff else [])
    rc, out, err = module.run_command(argv, data=json.dumps(request), binary_data=True)
    if rc != 0:
        message = err.strip()
        message = message[len("caretaker: "):] if message.startswith("caretaker: ") else message
        module.fail_json(msg=message or f"caretaker install-jobs exited {rc}", rc=rc)
    module.exit_json(**json.loads(out))


if __name__ == "__main__":
    main()
