"""Pending Debian package updates, the reboot flag, and unattended-upgrade as a job kind.

The engine runs in its own virtualenv on a host, which cannot import the system's
python3-apt, so updates are read from apt's own simulation output (`apt-get --simulate
dist-upgrade`, run as an argument list with LC_ALL=C). APT_CONFIG in the environment is
honoured, which lets tests point apt at a throwaway package root.
"""

from __future__ import annotations

import os
import re
import subprocess

from ..foundation import rules
from ..foundation.errors import CaretakerError, TransientError
from ..foundation.tasks import Task
from ..foundation.timestamps import iso
from . import check

REBOOT_REQUIRED = "/var/run/reboot-required"

# "Inst NAME [OLD] (NEW ORIGIN:VERSION/ARCHIVE[, ...] [ARCH])"; NEW packages have no [OLD].
_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<current>[^\]]+)\] )?\((?P<candidate>\S+) (?P<origins>.*) \[(?P<arch>[^\]]+)\]\)")

UPDATES_INFO_SPEC = {
    "update_cache": {"type": "bool", "default": False},
    "reboot_required_file": {"type": "path", "default": REBOOT_REQUIRED},
}


def _apt_env():
    return {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


def _run_apt(argv, transient_markers=("Could not get lock", "Temporary failure", "Could not resolve")):
    try:
        proc = subprocess.run(argv, env=_apt_env(), capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CaretakerError(f"cannot run {argv[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        details = {"argv": argv, "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
        message = f"{' '.join(argv[:3])} exited with status {proc.returncode}: {proc.stderr.strip()[-500:]}"
        if any(marker in proc.stderr for marker in transient_markers):
            raise TransientError(message, details=details)
        raise CaretakerError(message, details=details)
    return proc.stdout


def is_security_origin(origin: str) -> bool:
    """ORIGIN is apt's "Label:Version/Archive", e.g. "Debian-Security:12/stable-security"."""
    label = origin.partition(":")[0]
    archive = origin.rpartition("/")[2]
    return "security" in label.lower() or archive.endswith("-security")


def parse_simulation(text: str) -> list[dict]:
    """Upgrades of installed packages from `apt-get --simulate` output, sorted by name."""
    updates = []
    for line in text.splitlines():
        match = _INST.match(line)
        if not match or match["current"] is None:
            continue
        origins = [origin.strip() for origin in match["origins"].split(",") if origin.strip()]
        updates.append(
            {
                "name": match["name"],
                "current": match["current"],
                "candidate": match["candidate"],
                "arch": match["arch"],
                "origins": origins,
                "security": any(is_security_origin(origin) for origin in origins),
            }
        )
    return sorted(updates, key=lambda update: update["name"])


def pending_updates(update_cache=False) -> list[dict]:
    if update_cache:
        _run_apt(["apt-get", "--quiet", "update"])
    output = _run_apt(["apt-get", "--simulate", "--quiet", "-o", "Debug::NoLocking=true", "dist-upgrade"])
    return parse_simulation(output)


def reboot_status(path=REBOOT_REQUIRED) -> dict:
    """Whether the flag file Debian's packages drop exists, since when, and who asked."""
    try:
        since = os.stat(path).st_mtime
    except FileNotFoundError:
        return {"reboot_required": False, "reboot_required_since": None, "reboot_required_packages": []}
    try:
        with open(path + ".pkgs", encoding="utf-8") as handle:
            packages = sorted({line.strip() for line in handle if line.strip()})
    except FileNotFoundError:
        packages = []
    return {
        "reboot_required": True,
        "reboot_required_since": iso(since),
        "reboot_required_packages": packages,
    }


def _updates_info(args, ctx):
    updates = pending_updates(args["update_cache"])
    security = [update for update in updates if update["security"]]
    ctx.log("updates_info", pending=len(updates), security=len(security))
    reboot = reboot_status(args["reboot_required_file"])
    # As a check: pending security updates and a pending reboot want attention, other updates do not.
    findings = [
        check.Finding("security updates", "warning" if security else "ok", f"{len(security)} pending", value=len(security)),
        check.Finding("other updates", "ok", f"{len(updates) - len(security)} pending", value=len(updates) - len(security)),
        check.Finding("reboot", "warning" if reboot["reboot_required"] else "ok",
                      f"required since {reboot['reboot_required_since']}" if reboot["reboot_required"] else "not required",
                      details={"since": reboot["reboot_required_since"]}),
    ]
    return {
        **check.result("updates_info", findings),
        "updates": updates,
        "pending_count": len(updates),
        "security_count": len(security),
        **reboot,
    }


def _check_paths(args, settings=None):
    for name in ("reboot_required_file", "program"):
        if name in args:
            rules.absolute(args[name], name)


UPDATES_INFO = Task(name="updates_info", argument_spec=UPDATES_INFO_SPEC, run=_updates_info, check=_check_paths)


UNATTENDED_UPGRADE_SPEC = {
    "program": {"type": "path", "default": "/usr/bin/unattended-upgrade"},
    "dry_run": {"type": "bool", "default": False},
    "reboot_required_file": {"type": "path", "default": REBOOT_REQUIRED},
}

# unattended-upgrade's --verbose log line naming what it is about to upgrade.
_WILL_UPGRADE = re.compile(r"^Packages that will be upgraded: *(.*)$", re.MULTILINE)
_LOCKED = ("Lock could not be acquired", "Lock file is already taken")


def _unattended_upgrade(args, ctx):
    """Run unattended-upgrade so its failures go through the job runner's retries and alerts."""
    argv = [args["program"], "--verbose"]
    if args["dry_run"] or ctx.check_mode:
        argv.append("--dry-run")
    ctx.log("unattended_upgrade_start", argv=argv)
    try:
        proc = subprocess.run(argv, env=_apt_env(), capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CaretakerError(f"cannot run {argv[0]}: {exc.strerror}") from None
    output = proc.stdout + proc.stderr
    upgraded = sorted({name for match in _WILL_UPGRADE.finditer(output) for name in match[1].split()})
    result = {"argv": argv, "rc": proc.returncode, "output": output[-4000:], "upgraded": upgraded}
    if proc.returncode != 0:
        if any(marker in output for marker in _LOCKED):
            raise TransientError("unattended-upgrade could not take its lock (another package manager is running)", details=result)
        raise CaretakerError(f"unattended-upgrade exited with status {proc.returncode}: {output.strip()[-500:]}", details=result)
    ctx.log("unattended_upgrade_done", upgraded=upgraded)
    return {**result, "changed": bool(upgraded), **reboot_status(args["reboot_required_file"])}


UNATTENDED_UPGRADE = Task(name="unattended_upgrade", argument_spec=UNATTENDED_UPGRADE_SPEC, run=_unattended_upgrade, check=_check_paths)
