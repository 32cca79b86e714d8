"""The one bridge from an Ansible module to an engine task.

It takes the AnsibleModule the module built (duck-typed, so the engine imports nothing of
Ansible) and runs the task with the module's params and check mode.
"""

from __future__ import annotations

from .foundation.argspec import redact
from .foundation.config import Settings
from .foundation.errors import CaretakerError
from .foundation.tasks import Context


def run_as_module(module, task, settings=None):
    """Run task with module.params and exit through exit_json or fail_json."""
    ctx = Context(check_mode=module.check_mode, settings=settings or Settings.load(), diff=getattr(module, "_diff", False))
    try:
        # The engine's own checks and conversions (durations to seconds) on top of AnsibleModule's.
        args = task.validate({name: module.params.get(name) for name in task.argument_spec}, ctx.settings)
        result = task.run(args, ctx)
    except CaretakerError as exc:
        module.fail_json(msg=exc.message, **redact(task.argument_spec, exc.details))
        return
    result = dict(result)
    if not ctx.diff:
        result.pop("diff", None)
    module.exit_json(**result)
