#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: health_check
short_description: Check a host's load, memory, disks, services, ports, HTTP endpoints and PostgreSQL
version_added: 0.1.0
description:
  - Runs a list of probes on the host and grades each against its warning and critical thresholds
    (higher is worse). A probe that cannot measure is C(unknown), never C(ok).
  - The same check runs as a scheduled caretaker job (kind C(health_check)), where each probe alerts
    through the host's alert routes, and as C(caretaker check JOB), which answers like a Nagios plugin.
  - The module only reads; it never sends alerts.
requirements:
  - psycopg >= 3.1 (only for the C(postgres) probe)
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  probes:
    description: What to check.
    type: list
    elements: dict
    required: true
    suboptions:
      type:
        description:
          - C(load) is the load average per core; C(cpu) percent busy; C(memory) and C(swap) percent used;
            C(disk) and C(inodes) percent used per mount.
          - C(systemd) and C(supervisor) check that units or programs run; C(tcp), C(http) and C(postgres)
            measure latency in milliseconds (or replication lag in seconds).
        type: str
        required: true
        choices: [load, cpu, memory, swap, disk, inodes, systemd, supervisor, tcp, http, postgres]
      name:
        description: Name of the check in results, alerts and metrics; defaults to one built from the type.
        type: str
      warning:
        description: Value at or above which the probe warns. Each type has a default except the latency probes.
        type: float
      critical:
        description: Value at or above which the probe is critical.
        type: float
      path:
        description: Mount point or any path on the filesystem, for C(disk) and C(inodes); every real mount when omitted.
        type: path
      period:
        description: Load average period in minutes, for C(load).
        type: int
        default: 5
        choices: [1, 5, 15]
      interval:
        description:
          - Seconds to sample CPU time over, for C(cpu).
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 1s
      units:
        description: systemd units that must be active, for C(systemd).
        type: list
        elements: str
        default: []
      programs:
        description: supervisor programs or groups whose processes must all be RUNNING, for C(supervisor).
        type: list
        elements: str
        default: []
      supervisor_config:
        description: supervisord configuration file that tells C(supervisorctl) where to connect.
        type: path
      host:
        description: Host to connect to, for C(tcp).
        type: str
        default: 127.0.0.1
      port:
        description: TCP port, for C(tcp).
        type: int
      url:
        description: http:// or https:// URL to GET, for C(http).
        type: str
      expect_status:
        description: HTTP status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      body_contains:
        description: Text the response body must contain.
        type: str
      verify_tls:
        description: Verify the server certificate and host name for https URLs.
        type: bool
        default: true
      ca_file:
        description: CA bundle to verify against instead of the system's.
        type: path
      conninfo:
        description:
          - For C(postgres), a libpq connection string or URI. With the options after it, these are the
            connection settings every caretaker module takes (see M(caretaker.ops.pg_purge)); an option
            that is set wins over the same setting here. O(probes[].timeout) is the connect timeout.
          - C(dsn) is its old name.
        type: str
        default: ""
        aliases: [dsn]
      database:
        description: For C(postgres), the database to connect to.
        type: str
      pg_host:
        description: For C(postgres), the host name, IP address or socket directory.
        type: str
      pg_port:
        description: For C(postgres), the port.
        type: int
      pg_user:
        description: For C(postgres), the role to connect as.
        type: str
      pg_password:
        description: For C(postgres), the password of O(probes[].pg_user).
        type: str
      pg_passfile:
        description: For C(postgres), a libpq password file.
        type: path
      replication_lag:
        description: On a standby, grade the replay lag in seconds instead of the query latency.
        type: bool
        default: false
      timeout:
        description:
          - Seconds to wait for a command or a connection.
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 10s
  runbook:
    description: Runbook URL included in alerts when run as a job.
    type: str
"""

EXAMPLES = r"""
- name: Check disks, the web site and the database
  caretaker.ops.health_check:
    probes:
      - type: disk
        warning: 80
        critical: 90
      - type: http
        url: https://shop.example.org/health
        body_contains: ok
        warning: 500
        critical: 2000
      - type: postgres
        database: shop
        pg_host: 127.0.0.1
        pg_user: monitor
        pg_password: "{{ monitor_password }}"
  register: health

- name: Fail the play when anything is critical
  ansible.builtin.assert:
    that: health.status != 'critical'
    fail_msg: "{{ health.summary }}"
"""

RETURN = r"""
status:
  description: Worst status of all findings, C(ok), C(warning), C(unknown) or C(critical).
  returned: always
  type: str
  sample: warning
exit_code:
  description: The Nagios exit code of RV(status) (0 ok, 1 warning, 2 critical, 3 unknown).
  returned: always
  type: int
  sample: 1
summary:
  description: One line naming each finding that is not ok.
  returned: always
  type: str
  sample: "disk:/: / 87.1% used, 3.20 GiB free"
findings:
  description: One entry per thing measured.
  returned: always
  type: list
  elements: dict
  sample:
    - name: disk:/
      status: warning
      message: / 87.1% used, 3.20 GiB free
      value: 87.1
      unit: "%"
      warning: 85.0
      critical: 95.0
      minimum: 0
      maximum: 100
      details: {path: /}
      stage: null
kind:
  description: Always C(health_check).
  returned: always
  type: str
alerts:
  description: Alerts sent; always empty from the module, which never alerts.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.checks.health_check import HEALTH_CHECK
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, HEALTH_CHECK)


if __name__ == "__main__":
    main()
