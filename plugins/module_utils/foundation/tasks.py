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

from .errors import ConfigError
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
    # Checks beyond the argument spec (relations between options), run when a job file is
    # validated, so a bad job is refused when installed rather than when it first runs.
    check: Callable | None = None


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
