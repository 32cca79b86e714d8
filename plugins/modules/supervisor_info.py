#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: supervisor_info
short_description: Report the state of supervisord's programs, for health checks
version_added: 0.1.0
description:
  - Asks supervisord over its XML-RPC interface (the unix socket C(supervisorctl) uses) for every
    program's state, PID and uptime.
  - RV(not_running) lists the programs in C(FATAL), C(BACKOFF), C(EXITED) or C(UNKNOWN).
  - Needs no Python packages beyond the standard library on the host.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  server_url:
    description: Where supervisord listens, C(unix:///path) or C(http://host:port).
    type: str
    default: unix:///var/run/supervisor.sock
  username:
    description: User name, when the server requires one.
    type: str
  password:
    description: Password for O(username).
    type: str
  names:
    description: Report only these programs or groups.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read the workers' states
  caretaker.ops.supervisor_info:
  register: workers

- name: Fail when a worker is down
  ansible.builtin.assert:
    that: workers.not_running | length == 0
    fail_msg: "not running: {{ workers.not_running | join(', ') }}"
"""

RETURN = r"""
supervisord_state:
  description: supervisord's own state (C(RUNNING), C(RESTARTING), C(SHUTDOWN)).
  returned: always
  type: str
  sample: RUNNING
programs:
  description: One entry per process.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Process name, C(group:name) when it differs from its group.
      type: str
    group:
      description: Group name (the name C(supervisorctl update) takes).
      type: str
    state:
      description: C(STOPPED), C(STARTING), C(RUNNING), C(BACKOFF), C(STOPPING), C(EXITED), C(FATAL) or C(UNKNOWN).
      type: str
    pid:
      description: Process ID while running, else null.
      type: int
    uptime:
      description: Seconds since it started, while running.
      type: int
    exitstatus:
      description: Exit status of its last exit.
      type: int
    spawnerr:
      description: Why supervisord could not start it, if so.
      type: str
    description:
      description: supervisord's one-line description (C(pid 123, uptime 0:01:02)).
      type: str
  sample:
    - name: worker
      group: worker
      state: RUNNING
      pid: 1234
      uptime: 62
      exitstatus: 0
      spawnerr: ""
      description: pid 1234, uptime 0:01:02
not_running:
  description: Names of programs in C(FATAL), C(BACKOFF), C(EXITED) or C(UNKNOWN).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.lib.supervisor import SUPERVISOR_INFO
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    module = AnsibleModule(argument_spec=SUPERVISOR_INFO.argument_spec, supports_check_mode=True)
    run_as_module(module, SUPERVISOR_INFO)


if __name__ == "__main__":
    main()
