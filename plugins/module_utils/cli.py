"""The `caretaker` command on each host. Cron and systemd timers call `caretaker run JOB`.

Imports stay inside the commands so that starting the CLI costs little: a job that runs
every minute should not pay for what it does not use.
"""

from __future__ import annotations

import argparse
import json
import sys

from .foundation.errors import EXIT_BAD_INPUT, CaretakerError, ConfigError


def _out(text):
    sys.stdout.write(text + "\n")


def _err(text):
    sys.stderr.write(text + "\n")


def _cmd_run(args, settings):
    from .runner.run import run_job

    report = run_job(settings, args.job)
    if args.json:
        _out(json.dumps(report.to_dict(), default=str))
    elif report.status == "ok":
        _out(f"{report.job}: ok in {report.duration:.2f}s (run {report.run_id}, attempt {report.attempts})")
    else:
        where = f" (run {report.run_id}, attempt {report.attempts})" if report.run_id else ""
        _err(f"{report.job}: {report.status}{where}: {report.error}")
        if report.output.strip():
            _err(report.output.rstrip()[-2000:])
    return report.exit_code


def _cmd_status(args, settings):
    from .runner.job_info import collect, render_table

    report = collect(settings, include_runs=args.runs)
    _out(json.dumps(report, default=str, indent=2) if args.json else render_table(report))
    return 0


def _cmd_validate(args, settings):
    """Check job files (all of them, reporting each bad one) and optionally a settings file."""
    import os

    from .foundation.config import check_owner, check_settings, parse_job, read_yaml

    if args.name and len(args.files) > 1:
        raise ConfigError("--name names one file; give files named JOB.yml to validate several", field="--name")
    if not args.files and not args.settings:
        raise ConfigError("give job files to check, --settings FILE, or both")
    bad = 0
    if args.settings:  # first: the jobs are checked against its routes
        check_settings(settings, source=args.settings)
        _out(f"{args.settings}: valid settings")
    for path in args.files:
        name = args.name or os.path.basename(path).rsplit(".", 1)[0]
        source = f"job {name}" if args.name else None  # a validated temp copy: name the job, not the copy
        try:
            check_owner(path)
            job = parse_job(name, path, read_yaml(path), source=source, settings=settings)
        except ConfigError as exc:
            _err(f"caretaker: {exc.message}")
            bad += 1
            continue
        _out(f"{path}: valid {job.kind} job")
    return EXIT_BAD_INPUT if bad else 0


def _cmd_install_jobs(args, settings):
    from .runner.job_sync import sync

    try:
        request = json.loads(sys.stdin.read())
    except ValueError as exc:
        raise ConfigError(f"not valid JSON: {exc}", source="install-jobs request") from None
    _out(json.dumps(sync(request, settings.jobs_dir, check_mode=args.check, diff=args.diff)))
    return 0


def _cmd_ack(args, settings):
    from .foundation.ledger import Ledger

    ledger = Ledger(settings.database)
    count = ledger.ack_dead_letters(args.job)
    ledger.close()
    _out(f"{args.job}: acknowledged {count} dead letter(s)")
    return 0


def _cmd_check(args, settings):
    """A check job run now, reported the Nagios way: one line, exit 0/1/2/3; no alerts sent."""
    from .checks.check import CHECK_KINDS, nagios
    from .foundation.config import load_job
    from .foundation.tasks import Context, load_task, run_task

    try:
        job = load_job(settings, args.job)
        if job.kind not in CHECK_KINDS:
            raise CaretakerError(f"job {job.name} is a {job.kind} job, not a check ({', '.join(CHECK_KINDS)})")
        outcome = run_task(load_task(job.kind), job.args, Context(job=job.name, settings=settings, alerts=False))
    except CaretakerError as exc:
        _out(f"CARETAKER UNKNOWN - {exc.message}")
        return 3
    _out(json.dumps(outcome, default=str) if args.json else nagios(outcome))
    return outcome["exit_code"]


def build_parser():
    parser = argparse.ArgumentParser(prog="caretaker", description="Host chores run safely: backups, cleanup, checks.")
    parser.add_argument("--etc", help="configuration directory (default /etc/caretaker, or $CARETAKER_ETC)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a job now, with its lock, timeout, retries and alerts")
    run.add_argument("job")
    run.add_argument("--json", action="store_true", help="print the run report as JSON")
    run.set_defaults(func=_cmd_run)

    status = commands.add_parser("status", help="jobs, last runs, next due times and dead letters")
    status.add_argument("--json", action="store_true")
    status.add_argument("--runs", type=int, default=0, metavar="N", help="include the last N runs of each job")
    status.set_defaults(func=_cmd_status)

    validate = commands.add_parser("validate", help="check job files (and a settings file) without installing them")
    validate.add_argument("files", nargs="*", metavar="FILE", help="job files; every one is checked and each bad one reported")
    validate.add_argument("--name", help="job name, when the one file's name is not JOB.yml")
    validate.add_argument("--settings", metavar="FILE", help="a caretaker.yml to check; the job files are then checked against it")
    validate.set_defaults(func=_cmd_validate)

    install = commands.add_parser("install-jobs", help="make one owner's jobs and schedules match a JSON set read from stdin")
    install.add_argument("--check", action="store_true", help="report what would change and change nothing")
    install.add_argument("--diff", action="store_true", help="include each changed file's before and after")
    install.set_defaults(func=_cmd_install_jobs)

    check = commands.add_parser("check", help="run a check job now and report like a Nagios plugin (exit 0/1/2/3)")
    check.add_argument("job")
    check.add_argument("--json", action="store_true", help="print the structured result instead of the Nagios line")
    check.set_defaults(func=_cmd_check)

    ack = commands.add_parser("ack", help="acknowledge a job's dead letters")
    ack.add_argument("job")
    ack.set_defaults(func=_cmd_ack)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .foundation.config import Settings

    try:
        if getattr(args, "settings", None):  # validate --settings FILE reads that file instead
            settings = Settings.load(args.etc, strict=True, path=args.settings)
        else:  # as root, run, check and validate refuse files another user could change
            settings = Settings.load(args.etc, strict=args.command in ("run", "check", "validate"))
        return args.func(args, settings)
    except CaretakerError as exc:
        _err(f"caretaker: {exc.message}")
        return exc.exit_code if exc.exit_code else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
