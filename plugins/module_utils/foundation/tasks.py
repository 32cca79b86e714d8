"""Job kinds: the registry that ties a kind name to the engine task that does the work.

A task is one engine function with one argument spec. The Ansible module of the same
name, the job runner and the CLI all call it through this registry, so there is one
implementation of each chore. Modules are imported only when their kind is used, which
keeps `caretaker run` of a light job fast.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from . import argspec
from .errors import ConfigError, missing_library
from .timestamps import now_iso

# The engine's top package: `caretaker` on a host, the collection's module_utils under Ansible.
ENGINE = __package__.rpartition(".")[0]

# kind name -> "engine module:attribute" holding its Task
KINDS = {
    "noop": "runner.command:NOOP",
    "command": "runner.command:COMMAND",
    "file_cleanup": "hygiene.file_cleanup:FILE_CLEANUP",
    "pg_purge": "data.pg_purge:PG_PURGE",
    "job_retry": "data.job_retry:JOB_RETRY",
    "pg_backup": "backup.pg_backup:PG_BACKUP",
    "pg_restore": "backup.pg_backup:PG_RESTORE",
    "pg_restore_drill": "backup.pg_backup:PG_RESTORE_DRILL",
    "backup_prune": "backup.pg_backup:BACKUP_PRUNE",
    "health_check": "checks.health_check:HEALTH_CHECK",
    "cert_check": "checks.cert_check:CERT_CHECK",
    "log_alert": "checks.log_alert:LOG_ALERT",
    "updates_info": "checks.updates_info:UPDATES_INFO",
    "unattended_upgrade": "checks.updates_info:UNATTENDED_UPGRADE",
}


@dataclass(frozen=True)
class Task:
    name: str
    argument_spec: dict
    run: Callable
    # A task that is just an external program returns {"argv", "cwd", "env"}; the job
    # runner execs it directly instead of running Python in between.
    program: Callable | None = None
    # check(args, settings): everything about the arguments that can be wrong without
    # contacting anything (patterns compile, numbers in range, policies keep something,
    # routes exist). It raises ConfigError naming the field. settings may be None (routes
    # are then not checked).
    check: Callable | None = None

    def validate(self, params: dict | None, settings=None, source: str | None = None, prefix: str = "") -> dict:
        """The arguments converted and checked: what the module, `caretaker validate`, the
        runner and `caretaker check` all run before the task, so one bad value is refused the
        same way everywhere."""
        args = argspec.validate(self.argument_spec, params, source=source, prefix=prefix)
        if self.check:
            try:
                self.check(args, settings)
            except ConfigError as exc:
                field = exc.field if not exc.field or exc.field.startswith(prefix) else prefix + exc.field
                raise ConfigError(exc.reason, field=field, source=source) from None
        return args


@dataclass
class Context:
    """What a task may use besides its arguments."""

    check_mode: bool = False
    diff: bool = False
    job: str | None = None
    run_id: str | None = None
    settings: object = None
    events: list = field(default_factory=list)
    verbose: bool = False
    alerts: bool = True  # checks alert only as scheduled jobs, not from `caretaker check`

    def log(self, event: str, **fields):
        """Record a progress event; the runner's child prints them as JSON lines."""
        record = {"ts": now_iso(milliseconds=True), "event": event, **fields}
        self.events.append(record)
        if self.verbose:
            sys.stderr.write(json.dumps(record, default=str) + "\n")


def load_task(kind: str, source: str | None = None) -> Task:
    target = KINDS.get(kind)
    if target is None:
        raise ConfigError(f"unknown job kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}", field="kind", source=source)
    module_name, attribute = target.split(":")
    module = importlib.import_module(f"{ENGINE}.{module_name}")
    return getattr(module, attribute)


def run_task(task: Task, args: dict, ctx: Context):
    """task.run, with a missing optional package reported as one line naming it (no traceback).

    The module bridge, the job runner and `caretaker check` all run tasks through here.
    """
    try:
        return task.run(args, ctx)
    except ImportError as exc:
        missing = missing_library(exc)
        if missing is None:
            raise
        raise missing from None
