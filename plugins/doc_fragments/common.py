# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options every caretaker module takes (module_utils/modules.py COMMON_SPEC), so that
    # module_defaults for group/caretaker.ops.caretaker sets them once for all of them.
    DOCUMENTATION = r"""
options:
  etc:
    description:
      - The caretaker configuration directory (C(caretaker.yml) and C(jobs/)), which says where the
        ledger, logs and metrics are; C(/etc/caretaker), or E(CARETAKER_ETC), when unset.
      - Set it once for every caretaker module with C(module_defaults) for C(group/caretaker.ops.caretaker).
    type: path
notes:
  - Modules that need a Python package beyond the standard library (see Requirements) fail naming
    the package when the host's Python lacks it. The runtime role installs them in
    C(/opt/caretaker/bin/python3); set C(ansible_python_interpreter) to it for those tasks.
"""
