#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_health
short_description: Wait until an application answers healthy several times in a row
version_added: 0.2.0
description:
  - Asks O(url) with the engine's HTTP probe every O(interval) seconds until O(consecutive) answers in a row are healthy
    (status in O(expect_status), body containing O(expect_release) when set), and fails when O(budget) is spent.
requirements:
  - None beyond the Python standard library.
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.attributes
  - caretaker.ops.attributes.INFO_MODULE
options:
  url:
    description: The health URL.
    type: str
    required: true
  consecutive:
    description: Healthy answers needed in a row.
    type: int
    default: 3
  interval:
    description: Seconds between two requests.
    type: float
    default: 1.0
  budget:
    description: Seconds before the gate fails.
    type: float
    default: 60.0
  timeout:
    description: Seconds one request may take.
    type: float
    default: 5.0
  expect_status:
    description: Healthy HTTP statuses.
    type: list
    elements: int
    default: [200]
  expect_release:
    description: Text the body must contain, such as the new release's name, so an old process still serving fails.
    type: str
  verify_tls:
    description: Verify the server's certificate.
    type: bool
    default: true
  ca_file:
    description: CA bundle for O(verify_tls).
    type: path
"""

EXAMPLES = r"""
- name: Three healthy answers naming the new release within a minute
  caretaker.ops.deploy_health:
    url: http://127.0.0.1:8000/health
    expect_release: '"release": "2026.11.29"'
"""

RETURN = r"""
passed:
  description: Healthy answers in a row at the end.
  returned: always
  type: int
attempts:
  description: Requests made.
  returned: always
  type: int
seconds:
  description: Time the gate took.
  returned: always
  type: float
last:
  description: What the last answer was.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.deploy.health import DEPLOY_HEALTH
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, DEPLOY_HEALTH)


if __name__ == "__main__":
    main()
