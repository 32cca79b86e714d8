"""What `caretaker status` and the job_info module report: every job, its last run, what is due."""

from __future__ import annotations

import datetime
import fcntl
import os
import time

from ..foundation.config import load_job
from ..foundation.errors import ConfigError
from ..foundation.ledger import Ledger
from ..foundation.schedule import next_due
from ..foundation.tasks import Task
from ..foundation.timestamps import iso


def _is_running(settings, name):
    path = os.path.join(settings.state_dir, "locks", name + ".lock")
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
    except FileNotFoundError:
        pass
    return False


def collect(settings, include_runs=0):
    """A list of job reports and the open dead letters, as plain data."""
    ledger = Ledger(settings.database) if os.path.exists(settings.database) else None
    stats = ledger.job_stats() if ledger else {}
    checks = ledger.check_states() if ledger else {}
    dead = ledger.dead_letters() if ledger else []
    jobs = []
    now = datetime.datetime.now()
    for name in settings.job_names():
        entry = {"name": name, "kind": None, "schedule": None, "description": "", "valid": True, "error": None}
        try:
            job = load_job(settings, name, check_args=False)
            entry.update(kind=job.kind, schedule=job.schedule, description=job.description)
            due = next_due(job.schedule, now) if job.schedule else None
            entry["next_due"] = iso(due) if due else None
        except ConfigError as exc:
            entry.update(valid=False, error=exc.message, next_due=None)
        row = stats.get(name, {})
        entry.update(
            running=_is_running(settings, name),
            last_run=iso(row.get("last_run")),
            last_status=row.get("last_status"),
            last_exit_code=row.get("last_exit_code"),
            last_duration=round(row["last_duration"], 3) if row.get("last_duration") is not None else None,
            last_success=iso(row.get("last_success")),
            failures_total=row.get("failures_total", 0),
            dead_letters=sum(1 for letter in dead if letter["job"] == name),
        )
        state = checks.get(name)
        # A check's own verdict, beside the run result: a check that ran fine may have found a problem.
        entry["check"] = {
            "status": state["status"].upper(),
            "summary": state["summary"],
            "since": iso(state["since"]),
            "observed": iso(state["observed"]),
            "findings": state["findings"],
        } if state else None
        if include_runs and ledger:
            entry["runs"] = [dict(run, started=iso(run["started"]), ended=iso(run["ended"])) for run in ledger.recent_runs(name, include_runs)]
        jobs.append(entry)
    letters = [dict(letter, created=iso(letter["created"])) for letter in dead]
    if ledger:
        ledger.close()
    from ..deploy.info import apps_summary

    return {"host": settings.host, "generated": iso(time.time()), "jobs": jobs, "dead_letters": letters,
            "deploys": apps_summary(settings)}


def render_table(report):
    headers = ("JOB", "KIND", "LAST RUN", "RESULT", "CHECK", "TOOK", "NEXT DUE", "DEAD")
    rows = []
    for job in report["jobs"]:
        result = "invalid" if not job["valid"] else ("running" if job["running"] else job["last_status"] or "never run")
        rows.append((
            job["name"], job["kind"] or "?", (job["last_run"] or "-").replace("+00:00", "Z"), result,
            job["check"]["status"] if job.get("check") else "-",
            f"{job['last_duration']:.2f}s" if job["last_duration"] is not None else "-",
            (job["next_due"] or "-")[:16].replace("T", " "), str(job["dead_letters"]),
        ))
    widths = [max(len(str(row[index])) for row in [headers, *rows]) for index in range(len(headers))]
    lines = [f"host: {report['host']}"]
    for row in [headers, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for job in report["jobs"]:
        if not job["valid"]:
            lines.append(f"invalid job {job['name']}: {job['error']}")
    for job in report["jobs"]:
        if job.get("check"):
            since = job["check"]["since"].replace("+00:00", "Z")
            lines.append(f"check {job['name']}: {job['check']['status']} since {since}: {job['check']['summary']}")
    for letter in report["dead_letters"]:
        lines.append(f"dead letter: {letter['job']} {letter['ref']} at {letter['created']}: {letter['error']}")
    for app in report.get("deploys", []):
        lines.append(f"app {app['app']}: release {app['release'] or '-'} since {(app['since'] or '-').replace('+00:00', 'Z')}")
    return "\n".join(lines)


def _job_info(args, ctx):
    report = collect(ctx.settings, include_runs=args["runs"])
    if args["job"]:
        report["jobs"] = [job for job in report["jobs"] if job["name"] == args["job"]]
        report["dead_letters"] = [letter for letter in report["dead_letters"] if letter["job"] == args["job"]]
    return {"changed": False, **report}


JOB_INFO = Task(
    name="job_info",
    argument_spec={
        "job": {"type": "str"},
        "runs": {"type": "int", "default": 0},
    },
    run=_job_info,
)
