#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cert_check
short_description: Check TLS certificates on disk and on the wire before they expire or go stale
version_added: 0.1.0
description:
  - Reads PEM files (a leaf followed by its chain) and fetches the chain remote endpoints send (with SNI,
    on any port, optionally after SMTP STARTTLS).
  - Reports the leaf and the verified chain as separate findings, so an expired cross-signed root
    that a server still sends, but that no client needs, raises no alarm.
  - Long-lived certificates warn in stages (O(stages), the smallest is critical). Short-lived ones
    (lifetime up to O(short_lived)) warn "renewal overdue" once two thirds of their lifetime plus
    O(grace) have passed.
  - With O(endpoints[].compare_file), alerts when the certificate on disk was renewed but the
    service still serves the old one.
  - Runs as a scheduled caretaker job (kind C(cert_check)) that alerts; the module only reports.
requirements:
  - cryptography >= 42
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  files:
    description: PEM files holding a certificate, optionally followed by its intermediates.
    type: list
    elements: path
    default: []
  endpoints:
    description: TLS servers to fetch the certificate chain from.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Host name or address to connect to.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 443
      server_name:
        description: Name sent as SNI and checked against the certificate; defaults to O(endpoints[].host).
        type: str
      starttls:
        description: Protocol to speak before the TLS handshake.
        type: str
        default: none
        choices: [none, smtp]
      name:
        description: Name of the findings; defaults to C(server_name:port).
        type: str
      compare_file:
        description: The PEM file the service should serve; a newer, different certificate there is reported.
        type: path
  stages:
    description:
      - How long before expiry a long-lived certificate alerts again; the shortest is critical.
      - Durations, such as V(30d); a plain number is seconds, so a stage under an hour is refused (days need the V(d)).
    type: list
    elements: raw
    default: [30d, 14d, 7d]
  short_lived:
    description:
      - Certificates whose whole lifetime is at most this long are short-lived.
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
    default: 100d
  short_lived_days:
    description: Deprecated, use O(short_lived). The same in days.
    type: float
  grace:
    description:
      - How long past two thirds of a short-lived certificate's lifetime renewal counts as overdue.
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
    default: 2d
  grace_days:
    description: Deprecated, use O(grace). The same in days.
    type: float
  ca_file:
    description: Trusted roots (PEM) for chain verification; the system bundle when omitted.
    type: path
  timeout:
    description:
      - Seconds to wait for a remote endpoint.
      - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
    type: raw
    default: 10s
  runbook:
    description: Runbook URL included in alerts when run as a job.
    type: str
"""

EXAMPLES = r"""
- name: Check the web server's certificate on disk and as served
  caretaker.ops.cert_check:
    files:
      - /etc/letsencrypt/live/shop.example.org/fullchain.pem
    endpoints:
      - host: shop.example.org
        compare_file: /etc/letsencrypt/live/shop.example.org/fullchain.pem
      - host: mail.example.org
        port: 25
        starttls: smtp
  register: certs

- name: Show what needs attention
  ansible.builtin.debug:
    msg: "{{ certs.summary }}"
  when: certs.status != 'ok'
"""

RETURN = r"""
status:
  description: Worst status of all findings, C(ok), C(warning), C(unknown) or C(critical).
  returned: always
  type: str
  sample: warning
exit_code:
  description: The Nagios exit code of RV(status).
  returned: always
  type: int
  sample: 1
summary:
  description: One line naming each finding that is not ok.
  returned: always
  type: str
findings:
  description: >-
    Per certificate, C(cert:NAME) (the leaf: days left, host name, validity window), C(chain:NAME)
    (the verified path and its first expiry) and, with compare_file, C(served:NAME).
  returned: always
  type: list
  elements: dict
  sample:
    - name: cert:shop.example.org:443
      status: warning
      message: "renewal overdue since 2026-11-20T10:00:00+00:00: 12.0 of 90 days left"
      value: 12.0
      unit: d
      stage: overdue
      details:
        subject: CN=shop.example.org
        days_left: 12.0
        lifetime_days: 90.0
        dns_names: [shop.example.org]
kind:
  description: Always C(cert_check).
  returned: always
  type: str
alerts:
  description: Alerts sent; always empty from the module, which never alerts.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.checks.cert_check import CERT_CHECK
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, CERT_CHECK)


if __name__ == "__main__":
    main()
