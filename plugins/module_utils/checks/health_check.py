"""health_check: is this host well? Load, CPU, memory, disks, services, ports, HTTP, PostgreSQL.

Each probe measures one thing and grades it against its warning and critical thresholds
(higher is worse). A probe that cannot measure (no systemctl, no psycopg, a path that does
not exist) is UNKNOWN; a service that is down is CRITICAL.
"""

from __future__ import annotations

import os
import time

from ..foundation.errors import ConfigError
from ..foundation.tasks import Task
from . import check
from .check import Finding, measured, unknown

PROBE_TYPES = ("load", "cpu", "memory", "swap", "disk", "inodes", "systemd", "supervisor", "tcp", "http", "postgres")

# (warning, critical) when a probe does not set them
DEFAULT_THRESHOLDS = {
    "load": (1.0, 2.0),  # per core
    "cpu": (90.0, 97.0),  # percent busy
    "memory": (90.0, 95.0),  # percent used
    "swap": (50.0, 80.0),
    "disk": (85.0, 95.0),
    "inodes": (85.0, 95.0),
    "postgres_lag": (60.0, 300.0),  # seconds behind the primary
}

PROBE_OPTIONS = {
    "type": {"type": "str", "required": True, "choices": list(PROBE_TYPES)},
    "name": {"type": "str"},
    **check.THRESHOLD_OPTIONS,
    "path": {"type": "path"},
    "period": {"type": "int", "default": 5, "choices": [1, 5, 15]},
    "interval": {"type": "float", "default": 1.0},
    "units": {"type": "list", "elements": "str", "default": []},
    "programs": {"type": "list", "elements": "str", "default": []},
    "supervisor_config": {"type": "path"},
    "host": {"type": "str", "default": "127.0.0.1"},
    "port": {"type": "int"},
    "url": {"type": "str"},
    "expect_status": {"type": "list", "elements": "int", "default": [200]},
    "body_contains": {"type": "str"},
    "verify_tls": {"type": "bool", "default": True},
    "ca_file": {"type": "path"},
    "dsn": {"type": "str", "no_log": True},
    "replication_lag": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 10.0},
}

HEALTH_SPEC = {
    "probes": {"type": "list", "elements": "dict", "required": True, "options": PROBE_OPTIONS},
    "runbook": {"type": "str"},
}

# Filesystems worth watching when a disk probe names no path.
REAL_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "exfat", "f2fs", "jfs", "nfs", "nfs4", "cifs", "overlay"}


def _need(probe, option, field):
    value = probe.get(option)
    if value in (None, "", []):
        raise ConfigError(f"is required for a {probe['type']} probe", field=f"{field}.{option}")
    return value


# -- host resources --------------------------------------------------------------------


def probe_load(probe, field, limits):
    cores = os.cpu_count() or 1
    load = os.getloadavg()[{1: 0, 5: 1, 15: 2}[probe["period"]]]
    per_core = round(load / cores, 3)
    return [measured(probe["name"] or "load", per_core, "", limits, f"load {load:.2f} on {cores} core(s) ({per_core:.2f} per core)", minimum=0)]


def _cpu_times():
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def probe_cpu(probe, field, limits):
    total1, idle1 = _cpu_times()
    time.sleep(max(0.1, probe["interval"]))
    total2, idle2 = _cpu_times()
    busy = 100.0 * (1 - (idle2 - idle1) / max(1, total2 - total1))
    return [measured(probe["name"] or "cpu", round(busy, 1), "%", limits, f"CPU {busy:.1f}% busy", minimum=0, maximum=100)]


def meminfo():
    values = {}
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            key, rest = line.split(":", 1)
            values[key] = int(rest.split()[0]) * 1024
    return values


def probe_memory(probe, field, limits):
    info = meminfo()
    if probe["type"] == "memory":
        total, free = info["MemTotal"], info.get("MemAvailable", info["MemFree"])
    else:
        total, free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
    name = probe["name"] or probe["type"]
    if total == 0:
        return [Finding(name, "ok", f"no {probe['type']} configured", value=0.0, unit="%", warning=limits[0], critical=limits[1])]
    used = round(100.0 * (total - free) / total, 1)
    return [measured(name, used, "%", limits, f"{probe['type']} {used}% used of {total / 2**30:.1f} GiB", minimum=0, maximum=100)]


def mounts():
    """Mount points of real filesystems, one per device."""
    seen, found = set(), []
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            device, mount, fstype = line.split()[:3]
            mount = mount.replace("\\040", " ")
            if fstype in REAL_FILESYSTEMS and device not in seen:
                seen.add(device)
                found.append(mount)
    return found


def probe_disk(probe, field, limits):
    paths = [probe["path"]] if probe["path"] else mounts()
    findings = []
    for path in paths:
        label = probe["name"] if probe["name"] and probe["path"] else f"{probe['type']}:{path}"
        try:
            stat = os.statvfs(path)
        except OSError as exc:
            findings.append(unknown(label, f"cannot stat {path} ({field}.path): {exc.strerror}"))
            continue
        if probe["type"] == "disk":
            total, free, avail = stat.f_blocks, stat.f_bfree, stat.f_bavail
            what = f"{avail * stat.f_frsize / 2**30:.2f} GiB free"
        else:
            total, free, avail = stat.f_files, stat.f_ffree, stat.f_favail
            what = f"{avail} inodes free"
        usable = total - free + avail
        if usable == 0:  # filesystems without inode accounting (btrfs, vfat) report zero
            findings.append(Finding(label, "ok", f"{path}: no {probe['type']} accounting", details={"path": path}))
            continue
        used = round(100.0 * (total - free) / usable, 1)
        findings.append(measured(label, used, "%", limits, f"{path} {used}% used, {what}", minimum=0, maximum=100, details={"path": path}))
    return findings


# -- services ---------------------------------------------------------------------


def _run(argv, timeout):
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def probe_systemd(probe, field, limits):
    import shutil
    import subprocess

    units = _need(probe, "units", field)
    if not shutil.which("systemctl"):
        return [unknown(f"systemd:{unit}", "systemctl is not installed") for unit in units]
    findings = []
    for unit in units:
        name = f"systemd:{unit}"
        try:
            proc = _run(["systemctl", "show", unit, "--property=LoadState,ActiveState,SubState"], probe["timeout"])
        except subprocess.TimeoutExpired:
            findings.append(unknown(name, f"systemctl did not answer in {probe['timeout']}s"))
            continue
        if proc.returncode != 0:
            findings.append(unknown(name, f"systemctl failed: {(proc.stderr or proc.stdout).strip()[:200]}"))
            continue
        state = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        active, sub = state.get("ActiveState", "?"), state.get("SubState", "?")
        if state.get("LoadState") == "not-found":
            findings.append(Finding(name, "critical", f"unit {unit} does not exist", details=state))
        elif active == "active":
            findings.append(Finding(name, "ok", f"{unit} is {active} ({sub})", details=state))
        elif active in ("activating", "reloading"):
            findings.append(Finding(name, "warning", f"{unit} is {active} ({sub})", details=state))
        else:
            findings.append(Finding(name, "critical", f"{unit} is {active} ({sub})", details=state))
    return findings


def probe_supervisor(probe, field, limits):
    import shutil
    import subprocess

    programs = _need(probe, "programs", field)
    if not shutil.which("supervisorctl"):
        return [unknown(f"supervisor:{program}", "supervisorctl is not installed") for program in programs]
    argv = ["supervisorctl"] + (["-c", probe["supervisor_config"]] if probe["supervisor_config"] else []) + ["status"]
    try:
        proc = _run(argv, probe["timeout"])
    except subprocess.TimeoutExpired:
        return [unknown(f"supervisor:{program}", f"supervisorctl did not answer in {probe['timeout']}s") for program in programs]
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[1].isupper():
            states[parts[0]] = parts[1]
    if not states and proc.returncode not in (0, 3):  # 3: some program is not running
        message = (proc.stdout + proc.stderr).strip()[:200]
        return [unknown(f"supervisor:{program}", f"supervisorctl failed: {message}") for program in programs]
    findings = []
    for program in programs:
        name = f"supervisor:{program}"
        matches = {key: value for key, value in states.items() if key == program or key.startswith(program + ":")}
        if not matches:
            findings.append(Finding(name, "critical", f"supervisor knows no program {program}"))
            continue
        down = {key: state for key, state in matches.items() if state != "RUNNING"}
        if down:
            text = ", ".join(f"{key} {state}" for key, state in sorted(down.items()))
            status = "warning" if set(down.values()) == {"STARTING"} else "critical"
            findings.append(Finding(name, status, text, details=matches))
        else:
            findings.append(Finding(name, "ok", f"{len(matches)} process(es) running", details=matches))
    return findings


# -- network ------------------------------------------------------------------------


def probe_tcp(probe, field, limits):
    import socket

    port = _need(probe, "port", field)
    name = probe["name"] or f"tcp:{probe['host']}:{port}"
    started = time.monotonic()
    try:
        with socket.create_connection((probe["host"], port), timeout=probe["timeout"]):
            elapsed = round((time.monotonic() - started) * 1000, 1)
    except OSError as exc:
        return [Finding(name, "critical", f"cannot connect to {probe['host']}:{port}: {exc.strerror or exc}")]
    return [measured(name, elapsed, "ms", limits, f"connected in {elapsed} ms", minimum=0)]


def probe_http(probe, field, limits):
    import ssl
    import urllib.error
    import urllib.request

    url = _need(probe, "url", field)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"must be an http:// or https:// URL, got {url!r}", field=f"{field}.url")
    name = probe["name"] or f"http:{url}"
    context = ssl.create_default_context(cafile=probe["ca_file"])
    if not probe["verify_tls"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url, headers={"User-Agent": "caretaker-health-check"})
    started = time.monotonic()
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
        with opener.open(request, timeout=probe["timeout"]) as response:
            status, body = response.status, response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(1 << 20)
    except urllib.error.URLError as exc:
        reason = exc.reason
        kind = "TLS verification failed" if isinstance(reason, ssl.SSLCertVerificationError) else "request failed"
        return [Finding(name, "critical", f"{kind}: {getattr(reason, 'verify_message', None) or reason}")]
    except (OSError, ValueError) as exc:
        return [Finding(name, "critical", f"request failed: {exc}")]
    elapsed = round((time.monotonic() - started) * 1000, 1)
    details = {"status": status, "url": url}
    if status not in probe["expect_status"]:
        expected = ", ".join(map(str, probe["expect_status"]))
        return [Finding(name, "critical", f"HTTP {status}, expected {expected}", value=elapsed, unit="ms", details=details)]
    if probe["body_contains"] and probe["body_contains"].encode() not in body:
        return [Finding(name, "critical", f"body does not contain {probe['body_contains']!r}", value=elapsed, unit="ms", details=details)]
    return [measured(name, elapsed, "ms", limits, f"HTTP {status} in {elapsed} ms", minimum=0, details=details)]


def probe_postgres(probe, field, limits):
    dsn = _need(probe, "dsn", field)
    name = probe["name"] or "postgres"
    try:
        import psycopg
    except ImportError:
        return [unknown(name, "psycopg is not installed on this host")]
    started = time.monotonic()
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(probe["timeout"])), autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()
            elapsed = round((time.monotonic() - started) * 1000, 1)
            if probe["replication_lag"]:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                ).fetchone()
    except psycopg.Error as exc:
        # connection errors carry the server's words, never the DSN's password
        return [Finding(name, "critical", f"cannot query PostgreSQL: {str(exc).strip().splitlines()[0]}")]
    if not probe["replication_lag"]:
        return [measured(name, elapsed, "ms", limits, f"SELECT 1 in {elapsed} ms", minimum=0)]
    lag_limits = check.thresholds(probe, field, DEFAULT_THRESHOLDS["postgres_lag"])
    in_recovery, lag = row
    if not in_recovery:
        return [Finding(name, "ok", f"primary (not replicating), SELECT 1 in {elapsed} ms", value=0.0, unit="s",
                        warning=lag_limits[0], critical=lag_limits[1], details={"role": "primary"})]
    if lag is None:
        return [unknown(name, "standby has not replayed any transaction yet")]
    lag = round(float(lag), 1)
    return [measured(name, lag, "s", lag_limits, f"standby {lag}s behind", minimum=0, details={"role": "standby"})]


PROBES = {
    "load": probe_load,
    "cpu": probe_cpu,
    "memory": probe_memory,
    "swap": probe_memory,
    "disk": probe_disk,
    "inodes": probe_disk,
    "systemd": probe_systemd,
    "supervisor": probe_supervisor,
    "tcp": probe_tcp,
    "http": probe_http,
    "postgres": probe_postgres,
}


def run_probes(probes):
    findings = []
    for index, probe in enumerate(probes):
        field = f"probes[{index}]"
        limits = check.thresholds(probe, field, DEFAULT_THRESHOLDS.get(probe["type"], (None, None)))
        try:
            findings.extend(PROBES[probe["type"]](probe, field, limits))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a probe that breaks is UNKNOWN, never OK
            findings.append(unknown(probe["name"] or probe["type"], f"probe failed: {type(exc).__name__}: {exc}"))
    return findings


def _health_check(args, ctx):
    if not args["probes"]:
        raise ConfigError("must list at least one probe", field="probes")
    for index, probe in enumerate(args["probes"]):  # bad thresholds stop the check before any probe runs
        check.thresholds(probe, f"probes[{index}]")
    return check.finish(ctx, "health_check", run_probes(args["probes"]), args["runbook"])


HEALTH_CHECK = Task(name="health_check", argument_spec=HEALTH_SPEC, run=_health_check)
