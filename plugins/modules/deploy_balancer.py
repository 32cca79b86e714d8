#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_balancer
short_description: Drain a server from the load balancer, or put it back
version_added: 0.2.0
description:
  - HAProxy through its runtime API socket (admin level) - C(set server BACKEND/SERVER state drain|ready|maint); a drain
    waits until the server has no current session, at most O(drain_timeout) seconds.
  - Any other balancer through O(command), run with E(BALANCER_STATE), E(BALANCER_BACKEND) and E(BALANCER_SERVER) set.
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
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  type:
    description: V(haproxy) or a V(command) hook.
    type: str
    default: haproxy
    choices: [haproxy, command]
  socket:
    description: HAProxy's stats socket.
    type: path
    default: /run/haproxy/admin.sock
  backend:
    description: The backend holding the server.
    type: str
    required: true
  server:
    description: The server's name in the backend.
    type: str
    required: true
  state:
    description: V(drain) (no new connections), V(ready) (back in service) or V(maint).
    type: str
    required: true
    choices: [drain, ready, maint]
  drain_timeout:
    description: Seconds to wait for sessions to end after a drain.
    type: float
    default: 30.0
  command:
    description: Argument list of the hook for O(type=command).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Drain app1
  caretaker.ops.deploy_balancer:
    backend: app
    server: app1
    state: drain
  delegate_to: lb1
"""

RETURN = r"""
before:
  description: HAProxy's status of the server before.
  returned: with type haproxy
  type: str
  sample: UP
status:
  description: HAProxy's status of the server after.
  returned: with type haproxy
  type: str
  sample: DRAIN
sessions:
  description: The server's current sessions at the end.
  returned: with type haproxy
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.deploy.balancer import DEPLOY_BALANCER
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, DEPLOY_BALANCER)


if __name__ == "__main__":
    main()
