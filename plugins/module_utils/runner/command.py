"""The simplest job kinds: `noop` (for testing schedules) and `command` (an argv, no shell)."""

from __future__ import annotations

import os

from ..foundation import rules
from ..foundation.errors import CaretakerError, ConfigError
from ..foundation.tasks import Task


def _noop(args, ctx):
    ctx.log("noop", message=args["message"])
    return {"changed": False, "message": args["message"]}


NOOP = Task(name="noop", argument_spec={"message": {"type": "str", "default": "nothing to do"}}, run=_noop)

COMMAND_SPEC = {
    "argv": {"type": "list", "elements": "str", "required": True},
    "chdir": {"type": "path"},
    "environment": {"type": "dict", "default": {}},
}


def _command_check(args, settings=None):
    if not args["argv"]:
        raise ConfigError("must name a program to run", field="argv")
    rules.absolute(args["chdir"], "chdir")


def _command_program(args):
    env = None
    if args["environment"]:
        env = {**os.environ, **{key: str(value) for key, value in args["environment"].items()}}
    return {"argv": args["argv"], "cwd": args["chdir"], "env": env}


def _command(args, ctx):
    program = _command_program(args)
    argv = program["argv"]
    if ctx.check_mode:
        return {"changed": True, "argv": argv, "skipped": True}
    import subprocess  # deferred: a job runs its program by exec, only the module path needs this

    try:
        proc = subprocess.run(argv, cwd=program["cwd"], env=program["env"], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CaretakerError(f"cannot run {argv[0]}: {exc.strerror}") from None
    result = {"changed": True, "argv": argv, "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    if proc.returncode != 0:
        raise CaretakerError(f"{argv[0]} exited with status {proc.returncode}", details=result)
    return result


COMMAND = Task(name="command", argument_spec=COMMAND_SPEC, run=_command, program=_command_program, check=_command_check)
