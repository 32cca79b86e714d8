"""`caretaker install-jobs`: make a host's job files and schedules match one declared set.

The jobs role sends every job of one owner at once (JSON on stdin), so a converge costs one
task per owner whatever the number of jobs. Every job is validated before any file is
written; then job files, cron entries and systemd units are written atomically, jobs of the
owner no longer declared are removed, and only what differs is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from ..foundation import argspec, durations
from ..foundation.config import JOB_NAME, parse_job
from ..foundation.errors import CaretakerError, ConfigError
from ..foundation.schedule import spread, to_oncalendar

# The first line of every job file: which owner (role) manages the job.
MARKER = "# caretaker.ops.jobs owner="
# The keys of a declared job that go into its job file.
JOB_KEYS = ("kind", "args", "description", "schedule", "timeout", "kill_grace", "retry", "alert", "ping")

REQUEST_SPEC = {
    "owner": {"type": "str", "required": True},
    "scheduler": {"type": "str", "default": "cron", "choices": ["cron", "systemd"]},
    "seed": {"type": "str", "required": True},
    "command": {"type": "path", "default": "/usr/local/bin/caretaker"},
    "randomized_delay_sec": {"type": "int", "default": 60},
    "jobs": {"type": "list", "elements": "dict", "default": []},
    "cron_dir": {"type": "path", "default": "/etc/cron.d"},
    "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
}


def _job_file(owner, name, definition):
    # JSON is YAML too; it keeps the file readable without PyYAML (job_info on a system Python).
    return f"{MARKER}{owner}\n# Written by caretaker install-jobs; edits are overwritten.\n" + json.dumps(
        definition, indent=2, sort_keys=True) + "\n"


def _cron_file(name, definition, command):
    about = f": {definition['description']}" if definition.get("description") else ""
    return (f"# caretaker job {name}{about}\n# Written by caretaker install-jobs; edits are overwritten.\n"
            "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"{definition['schedule']} root {command} run {name} >/dev/null 2>&1\n")


def _service_unit(name, definition, command):
    about = f": {definition['description']}" if definition.get("description") else ""
    # The runner enforces the job's own timeout; this is the backstop if the runner hangs.
    backstop = durations.parse(definition.get("timeout", 3600)) + durations.parse(definition.get("kill_grace", 10)) + 60
    return (f"# Written by caretaker install-jobs; edits are overwritten.\n[Unit]\nDescription=caretaker job {name}{about}\n"
            "After=network-online.target\nWants=network-online.target\n\n"
            f"[Service]\nType=oneshot\nExecStart={command} run {name}\nTimeoutStartSec={backstop:g}\n")


def _timer_unit(name, definition, delay):
    return (f"# Written by caretaker install-jobs; edits are overwritten.\n[Unit]\nDescription=Schedule of caretaker job {name}\n\n"
            f"[Timer]\nOnCalendar={to_oncalendar(definition['schedule'])}\nPersistent=true\nRandomizedDelaySec={delay}\n\n"
            "[Install]\nWantedBy=timers.target\n")


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _owner_of(path):
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().rstrip("\n")
    except OSError:
        return None
    return first[len(MARKER):] if first.startswith(MARKER) else None


def _write(path, text, mode):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".caretaker-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _declared(request):
    """Validate every declared job; return name -> job file definition, or raise naming the job."""
    wanted, seen = {}, set()
    for index, entry in enumerate(request["jobs"]):
        name = entry.get("name")
        where = f"jobs[{index}]"
        if not isinstance(name, str) or not JOB_NAME.match(name):
            raise ConfigError("job names are 1-63 of a-z, 0-9, _ and -, starting alphanumeric", field="name", source=where)
        if name in seen:
            raise ConfigError("is declared twice", field="name", source=f"job {name}")
        seen.add(name)
        if entry.get("state", "present") == "absent":
            continue
        if entry.get("state", "present") != "present":
            raise ConfigError("must be present or absent", field="state", source=f"job {name}")
        definition = {key: entry[key] for key in JOB_KEYS if entry.get(key) is not None}
        if definition.get("schedule"):
            definition["schedule"] = spread(str(definition["schedule"]), f"{request['seed']}/{name}", source=f"job {name}")
        job = parse_job(name, f"job {name}", definition, source=f"job {name}")
        if request["scheduler"] == "systemd" and job.schedule:
            try:
                to_oncalendar(job.schedule)
            except ConfigError as exc:
                raise ConfigError(exc.reason, field="schedule", source=f"job {name}") from None
        wanted[name] = definition
    return wanted


def plan(request, jobs_dir):
    """What to write and remove: ({path: (text, mode)}, [paths to remove], [timers to start], [timers to stop])."""
    wanted = _declared(request)
    owner, scheduler, command = request["owner"], request["scheduler"], request["command"]
    cron_dir, unit_dir = request["cron_dir"], request["unit_dir"]
    try:
        files = sorted(entry[:-4] for entry in os.listdir(jobs_dir) if entry.endswith(".yml"))
    except FileNotFoundError:
        files = []
    owners = {name: _owner_of(os.path.join(jobs_dir, name + ".yml")) for name in files}
    owned = {name for name, other in owners.items() if other == owner}
    for name in wanted:
        other = owners.get(name, owner)
        if other not in (owner, None):
            raise ConfigError(f"is already installed by owner {other!r}", field="name", source=f"job {name}")

    desired = {}
    for name, definition in wanted.items():
        desired[os.path.join(jobs_dir, name + ".yml")] = (_job_file(owner, name, definition), 0o600)
        scheduled = bool(definition.get("schedule"))
        if scheduler == "cron" and scheduled:
            desired[os.path.join(cron_dir, "caretaker-" + name)] = (_cron_file(name, definition, command), 0o644)
        if scheduler == "systemd":
            desired[os.path.join(unit_dir, f"caretaker-{name}.service")] = (_service_unit(name, definition, command), 0o644)
            if scheduled:
                desired[os.path.join(unit_dir, f"caretaker-{name}.timer")] = (
                    _timer_unit(name, definition, request["randomized_delay_sec"]), 0o644)
    # Everything this owner may have written: the declared jobs and those it installed before.
    candidates = set()
    for name in owned | set(wanted) | {entry.get("name") for entry in request["jobs"]}:
        candidates |= {os.path.join(jobs_dir, name + ".yml"), os.path.join(cron_dir, "caretaker-" + name),
                       os.path.join(unit_dir, f"caretaker-{name}.service"), os.path.join(unit_dir, f"caretaker-{name}.timer")}
    remove = sorted(path for path in candidates - set(desired) if os.path.lexists(path))
    start = sorted(os.path.basename(path) for path in desired if path.endswith(".timer"))
    stop = sorted(os.path.basename(path) for path in remove if path.endswith(".timer"))
    return desired, remove, start, stop


def _systemd_booted():
    return os.path.isdir("/run/systemd/system")


def _systemctl(*argv, check=True):
    result = subprocess.run(["systemctl", *argv], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise CaretakerError(f"systemctl {' '.join(argv)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _timers_not_running(timers):
    """Timers not both enabled and active, asked of systemd in one call for the whole set."""
    if not timers:
        return []
    shown = _systemctl("show", "--property=Id,UnitFileState,ActiveState", *timers, check=False).stdout
    states = {}
    for block in shown.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[values.get("Id")] = values
    return [timer for timer in timers
            if states.get(timer, {}).get("UnitFileState") != "enabled" or states.get(timer, {}).get("ActiveState") != "active"]


def sync(request, jobs_dir, check_mode=False, diff=False):
    """Apply the declared set; return {changed, written, removed, started, stopped, diff}."""
    request = argspec.validate(REQUEST_SPEC, request, source="install-jobs request")
    desired, remove, start, stop = plan(request, jobs_dir)
    written, diffs = [], []
    for path, (text, mode) in sorted(desired.items()):
        before = _read(path)
        current_mode = os.stat(path).st_mode & 0o7777 if before is not None else None
        if before == text and current_mode == mode:
            continue
        written.append(path)
        if diff:
            diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": text})
    for path in remove:
        if diff:
            diffs.append({"before_header": path, "after_header": path, "before": _read(path) or "", "after": ""})
    booted = _systemd_booted()
    units_changed = any(path.startswith(request["unit_dir"] + "/") for path in written + remove)
    to_start = _timers_not_running(start) if booted else []
    to_stop = stop if booted else []
    changed = bool(written or remove or to_start)
    result = {"changed": changed, "written": written, "removed": remove, "started": to_start, "stopped": to_stop}
    if diff:
        result["diff"] = diffs
    if check_mode or not changed:
        return result
    for timer in to_stop:
        _systemctl("disable", "--now", timer, check=False)
    for path in written:
        _write(path, *desired[path])
    for path in remove:
        os.unlink(path)
    if booted and units_changed:
        _systemctl("daemon-reload")
    if booted:
        to_start = sorted(set(to_start) | {os.path.basename(path) for path in written if path.endswith(".timer")})
        if to_start:
            _systemctl("enable", "--now", *to_start)
        result["started"] = to_start
    return result
