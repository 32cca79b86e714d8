"""Where caretaker keeps things on a host, and the job files it reads.

/etc/caretaker/caretaker.yml holds host settings (paths, alert routes); each
/etc/caretaker/jobs/NAME.yml is one job. CARETAKER_ETC moves the whole tree, which the
tests use to run the engine without root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from . import argspec
from .errors import ConfigError, MissingLibrary

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

SETTINGS_SPEC = {
    "host": {"type": "str"},
    "state_dir": {"type": "path", "default": "/var/lib/caretaker"},
    "log_dir": {"type": "path", "default": "/var/log/caretaker"},
    "metrics_dir": {"type": "path"},
    "output_tail_bytes": {"type": "int", "default": 4096},
    "alert_routes": {"type": "dict", "default": {}},
    "default_routes": {"type": "list", "elements": "str", "default": []},
    "runbook_base_url": {"type": "str"},
}

JOB_SPEC = {
    "kind": {"type": "str", "required": True},
    "description": {"type": "str", "default": ""},
    "args": {"type": "dict", "default": {}},
    "schedule": {"type": "str"},
    "timeout": {"type": "int", "default": 3600},
    "kill_grace": {"type": "int", "default": 10},
    "retry": {
        "type": "dict",
        "default": {},
        "options": {
            "attempts": {"type": "int", "default": 1},
            "backoff": {"type": "float", "default": 30.0},
            "max_backoff": {"type": "float", "default": 900.0},
            "jitter": {"type": "float", "default": 0.25},
            "exit_codes": {"type": "list", "elements": "int", "default": [75]},
        },
    },
    "alert": {
        "type": "dict",
        "default": {},
        "options": {
            "after": {"type": "int", "default": 2},
            "routes": {"type": "list", "elements": "str"},
            "runbook": {"type": "str"},
            "remind_hours": {"type": "float"},
            "flap_limit": {"type": "int", "default": 4},
            "flap_window": {"type": "float", "default": 3600.0},
        },
    },
    "ping": {
        "type": "dict",
        "default": {},
        "options": {"url": {"type": "str", "no_log": True}, "timeout": {"type": "float", "default": 5.0}},
    },
}


@dataclass
class Settings:
    etc_dir: str = "/etc/caretaker"
    host: str = ""
    state_dir: str = "/var/lib/caretaker"
    log_dir: str = "/var/log/caretaker"
    metrics_dir: str | None = None
    output_tail_bytes: int = 4096
    alert_routes: dict = field(default_factory=dict)
    default_routes: list = field(default_factory=list)
    runbook_base_url: str | None = None

    @classmethod
    def load(cls, etc_dir: str | None = None) -> Settings:
        etc_dir = etc_dir or os.environ.get("CARETAKER_ETC", "/etc/caretaker")
        path = os.path.join(etc_dir, "caretaker.yml")
        raw = read_yaml(path) if os.path.exists(path) else {}
        values = argspec.validate(SETTINGS_SPEC, raw, source=path)
        values["host"] = values["host"] or os.uname().nodename
        return cls(etc_dir=etc_dir, **values)

    @property
    def jobs_dir(self) -> str:
        return os.path.join(self.etc_dir, "jobs")

    @property
    def database(self) -> str:
        return os.path.join(self.state_dir, "state.db")

    def job_path(self, name: str) -> str:
        return os.path.join(self.jobs_dir, name + ".yml")

    def job_names(self) -> list:
        try:
            entries = os.listdir(self.jobs_dir)
        except FileNotFoundError:
            return []
        return sorted(entry[:-4] for entry in entries if entry.endswith(".yml") and JOB_NAME.match(entry[:-4]))


@dataclass
class Job:
    name: str
    path: str
    kind: str
    args: dict
    description: str
    schedule: str | None
    timeout: int
    kill_grace: int
    retry: dict
    alert: dict
    ping: dict


def read_yaml(path: str):
    """Read a mapping from a YAML file.

    The roles write job files and caretaker.yml as JSON, which is YAML too, so an Ansible
    module running under a system Python without PyYAML (job_info on any host) can still
    read them; files written by hand need PyYAML, which the caretaker virtualenv has.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError("file not found", source=path) from None
    except PermissionError:
        raise ConfigError("permission denied", source=path) from None
    try:
        import yaml  # deferred: only commands that read files pay for it
    except ImportError:
        data = _read_json(text, path)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", source=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping at the top level", source=path)
    return data


def _read_json(text, path):
    import json

    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise ConfigError(f"is not JSON, and reading YAML {MissingLibrary('PyYAML').message}", source=path) from None


def parse_job(name: str, path: str, raw: dict, source: str | None = None, check_args: bool = True) -> Job:
    """Validate a job definition and its task arguments; raise ConfigError naming the field.

    `source` is how errors name the file, when `path` is a temporary copy being validated.
    Reports pass check_args=False: they need the job's shape, not its kind's code.
    """
    from .tasks import KINDS, load_task

    source = source or path
    if not JOB_NAME.match(name):
        raise ConfigError("job names are 1-63 of a-z, 0-9, _ and -, starting alphanumeric", field="name", source=source)
    values = argspec.validate(JOB_SPEC, raw, source=source)
    if values["kind"] not in KINDS or check_args:
        task = load_task(values["kind"], source=source)
    if check_args:
        values["args"] = argspec.validate(task.argument_spec, values["args"], source=source, prefix="args.")
        if task.check:
            try:
                task.check(values["args"])
            except ConfigError as exc:
                field = exc.field if not exc.field or exc.field.startswith("args.") else f"args.{exc.field}"
                raise ConfigError(exc.reason, field=field, source=source) from None
    if values["timeout"] <= 0:
        raise ConfigError("must be a positive number of seconds", field="timeout", source=source)
    if values["retry"]["attempts"] < 1:
        raise ConfigError("must be at least 1", field="retry.attempts", source=source)
    if values["alert"]["after"] < 1:
        raise ConfigError("must be at least 1", field="alert.after", source=source)
    if values["schedule"]:
        from .schedule import parse_cron

        parse_cron(values["schedule"], source=source)
    return Job(name=name, path=path, **values)


def load_job(settings: Settings, name: str, check_args: bool = True) -> Job:
    if not JOB_NAME.match(name):
        raise ConfigError(f"invalid job name {name!r}", field="name")
    path = settings.job_path(name)
    if not os.path.exists(path):
        raise ConfigError(f"unknown job {name!r} (no {path})")
    return parse_job(name, path, read_yaml(path), check_args=check_args)
