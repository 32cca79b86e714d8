"""Where caretaker keeps things on a host, and the job files it reads.

/etc/caretaker/caretaker.yml holds host settings (paths, alert routes); each
/etc/caretaker/jobs/NAME.yml is one job. CARETAKER_ETC moves the whole tree, which the
tests use to run the engine without root.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from . import argspec, durations
from .errors import ConfigError, MissingLibrary
from .rules import at_least, between, check_routes, http_url, positive

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
    "timeout": durations.option(default="1h"),
    "kill_grace": durations.option(default="10s"),
    "retry": {
        "type": "dict",
        "default": {},
        "options": {
            "attempts": {"type": "int", "default": 1},
            "backoff": durations.option(default="30s"),
            "max_backoff": durations.option(default="15m"),
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
            "remind": durations.option(),
            "remind_hours": durations.renamed("remind", "h"),
            "flap_limit": {"type": "int", "default": 4},
            "flap_window": durations.option(default="1h"),
        },
    },
    "ping": {
        "type": "dict",
        "default": {},
        "options": {"url": {"type": "str", "no_log": True}, "timeout": durations.option(default="5s")},
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
    def load(cls, etc_dir: str | None = None, strict: bool = False, path: str | None = None) -> Settings:
        """The host settings; strict (run, check, validate) refuses a file others could change.

        path reads another file than ETC/caretaker.yml (a staged copy being validated).
        """
        etc_dir = etc_dir or os.environ.get("CARETAKER_ETC", "/etc/caretaker")
        path = path or os.path.join(etc_dir, "caretaker.yml")
        if strict:
            check_owner(path)
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


def parse_job(name: str, path: str, raw: dict, source: str | None = None, check_args: bool = True, settings=None) -> Job:
    """Validate a job definition and its task arguments; raise ConfigError naming the field.

    `source` is how errors name the file, when `path` is a temporary copy being validated.
    Reports pass check_args=False: they need the job's shape, not its kind's code. With
    settings, the alert routes the job names must exist in them.
    """
    from .tasks import KINDS, load_task

    source = source or path
    if not JOB_NAME.match(name):
        raise ConfigError("job names are 1-63 of a-z, 0-9, _ and -, starting alphanumeric", field="name", source=source)
    values = argspec.validate(JOB_SPEC, raw, source=source)
    if values["kind"] not in KINDS or check_args:
        task = load_task(values["kind"], source=source)
    if check_args:
        values["args"] = task.validate(values["args"], settings, source=source, prefix="args.")
    check_job(values, settings, source)
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
    if check_args:
        check_owner(path)
    return parse_job(name, path, read_yaml(path), check_args=check_args, settings=settings if check_args else None)


# -- checks every job and settings file passes ---------------------------------------------


def check_job(values, settings, source):
    """The job file's own fields (not its kind's arguments)."""
    positive(values["timeout"], "timeout", source)
    at_least(values["retry"]["attempts"], 1, "retry.attempts", source)
    at_least(values["retry"]["max_backoff"], values["retry"]["backoff"], "retry.max_backoff", source, " (retry.backoff)")
    between(values["retry"]["jitter"], 0, 1, "retry.jitter", source)
    at_least(values["alert"]["after"], 1, "alert.after", source)
    at_least(values["alert"]["flap_limit"], 1, "alert.flap_limit", source)
    positive(values["alert"]["flap_window"], "alert.flap_window", source)
    positive(values["alert"]["remind"], "alert.remind", source)
    check_routes(settings, values["alert"]["routes"], "alert.routes", source)
    positive(values["ping"]["timeout"], "ping.timeout", source)
    try:
        http_url(values["ping"]["url"], "ping.url")
    except ConfigError as exc:
        raise ConfigError("must be an http:// or https:// URL", field=exc.field, source=source) from None


def check_settings(settings: Settings, source: str | None = None):
    """Every alert route as the notifier reads it, and default_routes naming defined routes."""
    from ..alerting import notify

    for name in sorted(settings.alert_routes):
        try:
            notify.route_config(settings, name)
        except ConfigError as exc:
            raise ConfigError(exc.reason, field=exc.field, source=source) from None
    check_routes(settings, settings.default_routes, "default_routes", source)
    at_least(settings.output_tail_bytes, 0, "output_tail_bytes", source)


def check_owner(path: str):
    """As root, refuse a file (or the folder holding it) that another user could change.

    Whoever can write a job file or caretaker.yml chooses what root runs; cron, sudo and
    sshd's StrictModes refuse such files the same way. The file and its folder must be
    owned by root and not writable by group or others; a sticky folder such as /tmp may be,
    as there nobody else can rename or replace root's file.
    """
    if os.geteuid() != 0:
        return
    folder = os.path.dirname(os.path.abspath(path))
    for target in (path, folder):
        try:
            st = os.stat(target)
        except FileNotFoundError:
            continue  # a missing file is reported by whoever reads it
        mode = f"{stat.S_IMODE(st.st_mode):04o}"
        if st.st_uid != 0:
            raise ConfigError(f"{target} is owned by uid {st.st_uid} (mode {mode}), not root: refusing to use it as root",
                              source=path)
        sticky_folder = target == folder and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_folder:
            raise ConfigError(f"{target} has mode {mode}: writable by group or others, so anyone could change what root runs; "
                              "make it writable only by root (chmod go-w)", source=path)
