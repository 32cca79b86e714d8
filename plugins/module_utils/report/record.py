"""One host's record for the fleet report: what the host knows about itself, read in one pass.

A record is a list of items, each one thing an operator cares about (a job and its check,
a database's backups, a certificate, a file system, updates, dead letters, a supervisor
program, an application's release), with its status, a one-line reason, when it was
observed and how long that observation stays true (ttl, seconds: the job's schedule
interval with some grace, or None). render.py judges staleness against the time it
renders, so an old record never looks healthy. Whatever could not be read becomes an
UNKNOWN item that says why.
"""

from __future__ import annotations

import datetime
import os
import time

from ..checks.check import worst
from ..foundation import durations
from ..foundation.config import Settings, load_job
from ..foundation.errors import CaretakerError
from ..foundation.ledger import FINAL_FAILURES, Ledger
from ..foundation.schedule import next_due
from ..foundation.tasks import Context, Task
from ..foundation.timestamps import epoch, iso

RECORD_VERSION = 1
# How long what the report reads live (disks, dead letters, catalogs) stays true: one report interval.
LIVE_TTL = 86400
# A deploy journaled as switched or running for longer than this has stopped half way.
UNFINISHED_DEPLOY = 3600
# A scheduled observation stays fresh for its interval, plus 10% and 5 minutes for the run itself.
GRACE = (1.1, 300)


def interval(schedule, now=None):
    """Seconds between two firings of a cron schedule after now (None: unscheduled)."""
    if not schedule:
        return None
    start = datetime.datetime.fromtimestamp(now or time.time())
    first = next_due(schedule, start)
    second = next_due(schedule, first) if first else None
    return (second - first).total_seconds() if second else None


def ttl_for(schedule, now=None):
    every = interval(schedule, now)
    return None if every is None else round(every * GRACE[0] + GRACE[1])


def item(area, name, status, message, observed_at, ttl, **extra):
    return {"area": area, "name": name, "status": status, "message": message, "observed_at": observed_at, "ttl": ttl, **extra}


def _job_items(settings, ledger, jobs, now):
    stats = ledger.job_stats() if ledger else {}
    checks = ledger.check_states() if ledger else {}
    items = []
    for name, job in jobs.items():
        if isinstance(job, CaretakerError):
            items.append(item("job", name, "critical", f"invalid job file: {job.message}", iso(now), None))
            continue
        ttl = ttl_for(job.schedule, now)
        row, state = stats.get(name), checks.get(name)
        if row is None:
            items.append(item("job", name, "unknown", "never ran", None, ttl, kind=job.kind))
            continue
        run_bad = row["last_status"] in FINAL_FAILURES
        status, message, observed = ("critical" if run_bad else "ok"), f"last run {row['last_status']}", row["last_run"]
        extra = {"kind": job.kind, "last_status": row["last_status"], "last_success": iso(row["last_success"])}
        if state:
            # The check's own verdict is what matters; a run that failed is at least as bad.
            status = worst([status, state["status"]])
            message = state["summary"] if not run_bad else f"{message}; check: {state['summary']}"
            observed, extra["since"] = state["observed"], iso(state["since"])
        items.append(item("job", name, status, message, iso(observed), ttl, **extra))
        if state and job.kind == "cert_check":
            items += [
                item("cert", finding["name"], finding["status"], finding["message"], iso(state["observed"]), ttl,
                     value=finding["value"], unit="d")
                for finding in state["findings"] if finding.get("unit") == "d"
            ]
    return items


def _backup_items(settings, ledger, jobs, now):
    from ..foundation import argspec

    items = []
    drills = {}
    for drill in ledger.drills() if ledger else []:
        drills[drill["database"]] = drill  # ordered by time: the last one stays
    backup_jobs = {name: job for name, job in jobs.items() if not isinstance(job, CaretakerError) and job.kind == "pg_backup"}
    for name, job in sorted(backup_jobs.items()):
        database = job.args.get("database") or name
        target = interval(job.schedule, now) or LIVE_TTL
        try:
            # Imported by name, not through the kind registry, so Ansible ships it with the module.
            from ..backup.pg_backup import BACKUP_INFO as task

            args = argspec.validate(task.argument_spec, {key: value for key, value in job.args.items() if key in task.argument_spec})
            info = task.run({**args, "database": database}, Context(settings=settings))
        except (CaretakerError, ImportError, OSError) as exc:
            message = exc.message if isinstance(exc, CaretakerError) else str(exc)
            items.append(item("backup", database, "unknown", f"cannot read the backup catalog: {message}", iso(now), LIVE_TTL))
            continue
        backups = {entry["id"]: entry for entry in info["backups"]}
        latest = backups.get(info["latest"])
        verified = backups.get(info["latest_verified"])
        extra = {"target": target, "unit": "h"}
        if latest is None:
            items.append(item("backup", database, "critical", "no backup", iso(now), LIVE_TTL, value=None, **extra))
            continue
        finished = epoch(latest["manifest"]["finished"])
        age = now - finished
        status = "ok" if age <= target * GRACE[0] + GRACE[1] else "warning" if age <= 2 * target else "critical"
        message = f"newest backup {durations.rough(age)} old ({latest['manifest']['size']} bytes)"
        extra.update(value=round(age / 3600, 2), size=latest["manifest"]["size"], latest=latest["id"])
        if verified:
            extra.update(rpo_hours=round((now - epoch(verified["manifest"]["finished"])) / 3600, 2),
                         rto_seconds=verified["drill"].get("restore_seconds"), verified=verified["id"])
            message += f"; newest restore-proven {durations.rough(now - epoch(verified['manifest']['finished']))} old"
        else:
            status = worst([status, "warning"])
            message += "; no backup proven by a restore drill"
        drill = drills.get(database) or (latest.get("drill") if latest.get("drill") else None)
        if drill and not drill.get("ok"):
            status = "critical"
            message = f"restore drill of {drill.get('backup_id')} failed: {drill.get('error')}; " + message
        items.append(item("backup", database, status, message, iso(now), LIVE_TTL, **extra))
    return items


def _disk_items(jobs, now):
    from ..checks import health_check

    paths = {}
    for job in jobs.values():
        if isinstance(job, CaretakerError) or job.kind != "health_check":
            continue
        for probe in job.args.get("probes", []):
            if probe.get("type") in ("disk", "inodes") and probe.get("path"):
                paths[probe["path"]] = (probe.get("warning"), probe.get("critical"))
    for mount in health_check.mounts():
        paths.setdefault(mount, (None, None))
    items = []
    for path, limits in sorted(paths.items()):
        for kind in ("disk", "inodes"):
            defaults = health_check.DEFAULT_THRESHOLDS[kind]
            limit = (limits[0] if limits[0] is not None else defaults[0], limits[1] if limits[1] is not None else defaults[1])
            probe = {"type": kind, "path": path, "name": None}
            for finding in health_check.probe_disk(probe, "disks", limit):
                items.append(item(kind, path, finding.status, finding.message, iso(now), LIVE_TTL,
                                  value=finding.value, unit="%", warning=limit[0], critical=limit[1]))
    return items


def _updates_items(ledger, jobs, now, live):
    for name, job in jobs.items():
        if not isinstance(job, CaretakerError) and job.kind == "updates_info":
            state = (ledger.check_states() if ledger else {}).get(name)
            if state:
                return [item("updates", f["name"], f["status"], f["message"], iso(state["observed"]), ttl_for(job.schedule, now),
                             value=f.get("value")) for f in state["findings"]]
    if not live:
        return []
    from ..checks import updates_info

    try:
        outcome = updates_info.UPDATES_INFO.run({"update_cache": False, "reboot_required_file": updates_info.REBOOT_REQUIRED}, Context())
    except CaretakerError as exc:
        return [item("updates", "pending updates", "unknown", f"cannot read: {exc.message}", iso(now), LIVE_TTL)]
    return [item("updates", f["name"], f["status"], f["message"], iso(now), LIVE_TTL, value=f.get("value")) for f in outcome["findings"]]


def _dead_letter_items(ledger, now):
    letters = ledger.dead_letters() if ledger else []
    if not letters:
        return [item("dead_letters", "dead letters", "ok", "none", iso(now), LIVE_TTL, value=0)]
    oldest = min(letter["created"] for letter in letters)
    jobs = sorted({letter["job"] for letter in letters})
    return [item("dead_letters", "dead letters", "critical",
                 f"{len(letters)} unacknowledged ({', '.join(jobs)}), oldest {durations.rough(max(now - oldest, 0))} old",
                 iso(now), LIVE_TTL, value=len(letters), oldest=iso(oldest))]


def _deploy_items(ledger, now):
    """Each application this host serves: its release, and a warning while its last deploy here
    did not go through (rolled back, failed, or switched and never confirmed)."""
    from ..deploy.info import served

    items = []
    for app, release, since in served(ledger) if ledger else []:
        if release is None:  # the lock host of another fleet's deploys: it serves nothing
            continue
        last = ledger.last_switch(app)
        tried = f"the {last['action']} to {last['release']} ({last['deploy_id']}, {durations.rough(max(now - last['started'], 0))} ago)"
        if last["outcome"] in ("rolled_back", "failed"):
            status, message = "warning", f"release {release}; {tried} {last['outcome'].replace('_', ' ')}"
        elif last["outcome"] != "ok" and now - last["started"] > UNFINISHED_DEPLOY:
            status, message = "warning", f"release {release}; {tried} never finished"
        else:
            status, message = "ok", f"release {release} since {iso(since)}"
        items.append(item("deploy", app, status, message, iso(now), LIVE_TTL, value=release))
    return items


def _supervisor_items(now, socket_path="/var/run/supervisor.sock"):
    if not os.path.exists(socket_path):
        return []
    from ..lib import supervisor

    try:
        programs = supervisor.process_info(supervisor.connect())
    except Exception as exc:  # noqa: BLE001 - an unreadable supervisord is UNKNOWN, not a failed report
        return [item("supervisor", "supervisord", "unknown", f"cannot read: {exc}", iso(now), LIVE_TTL)]
    return [item("supervisor", program["name"], "ok" if program["state"] == "RUNNING" else "critical",
                 program["state"].lower(), iso(now), LIVE_TTL) for program in programs]


def collect(etc=None, now=None, live_updates=True):
    """The record of the host this runs on. A host without caretaker still gets a record that says so."""
    now = now or time.time()
    record = {"version": RECORD_VERSION, "host": os.uname().nodename, "observed_at": iso(now), "runtime": False,
              "items": [], "errors": []}
    try:
        settings = Settings.load(etc)
    except CaretakerError as exc:
        record["errors"].append(f"caretaker runtime not usable: {exc.message}")
        return record
    record.update(host=settings.host, runtime=os.path.exists(settings.jobs_dir))
    if not record["runtime"]:
        record["errors"].append(f"caretaker runtime not installed: no {settings.jobs_dir}")
    jobs = {}
    for name in settings.job_names() if record["runtime"] else []:
        try:
            jobs[name] = load_job(settings, name, check_args=False)
        except CaretakerError as exc:
            jobs[name] = exc
    ledger = Ledger(settings.database) if os.path.exists(settings.database) else None
    try:
        record["items"] += _job_items(settings, ledger, jobs, now)
        record["items"] += _backup_items(settings, ledger, jobs, now)
        record["items"] += _updates_items(ledger, jobs, now, live_updates)
        record["items"] += _dead_letter_items(ledger, now)
        record["items"] += _deploy_items(ledger, now)
        record["items"] += _supervisor_items(now)
        record["items"] += _disk_items(jobs, now)
    finally:
        if ledger:
            ledger.close()
    record["status"] = worst(entry["status"] for entry in record["items"]) if record["items"] else "unknown"
    return record


def _host_report(args, ctx):
    return {"changed": False, "record": collect(ctx.settings.etc_dir, live_updates=args["live_updates"])}


HOST_REPORT = Task(
    name="host_report",
    argument_spec={"live_updates": {"type": "bool", "default": True}},
    run=_host_report,
)
