"""The one bridge from an Ansible module to an engine task.

It takes the AnsibleModule class (passed in, so the engine imports nothing of Ansible),
builds the module from the task's argument spec plus the options every caretaker module
shares (COMMON_SPEC, documented by the caretaker.ops.common doc fragment), and runs the
task with the module's params and check mode.
"""

from __future__ import annotations

from .foundation.argspec import redact
from .foundation.config import Settings
from .foundation.errors import CaretakerError
from .foundation.tasks import Context, run_task

# Options every module takes, so module_defaults for group/caretaker.ops.caretaker can set
# them once for the whole action group.
COMMON_SPEC = {
    "etc": {"type": "path"},
}


def module_spec(task) -> dict:
    return {**task.argument_spec, **COMMON_SPEC}


def run_as_module(module_class, task, settings=None):
    """Build the module, run task with its params and exit through exit_json or fail_json.

    settings is what the task gets when the play sets no `etc`; by default the host's
    /etc/caretaker (or $CARETAKER_ETC).
    """
    module = module_class(argument_spec=module_spec(task), supports_check_mode=True)
    params = dict(module.params)
    etc = params.pop("etc", None)
    try:
        if etc or settings is None:
            settings = Settings.load(etc)
        ctx = Context(check_mode=module.check_mode, settings=settings, diff=getattr(module, "_diff", False))
        # The engine's own checks and conversions (durations to seconds) on top of AnsibleModule's.
        args = task.validate(params, ctx.settings)
        result = run_task(task, args, ctx)
    except CaretakerError as exc:
        module.fail_json(msg=exc.message, **redact(task.argument_spec, exc.details))
        return
    result = dict(result)
    if not ctx.diff:
        result.pop("diff", None)
    module.exit_json(**result)
