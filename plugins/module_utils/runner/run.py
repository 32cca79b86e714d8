"""`caretaker run JOB`: one scheduled chore, with a lock, a timeout, retries and a record.

The runner forks the task into its own session (process group), so a timeout can TERM
and then KILL everything the task started, and a runner killed with SIGKILL takes its
child down with it (PR_SET_PDEATHSIG). The lock is flock(2), which the kernel drops when
its holder dies, so no crash leaves a lock behind.

Runs never overlap, including what a killed run left behind: PDEATHSIG reaches only the
direct child, so the runner writes the task's process group (its id, the leader's start
time and the boot id) into the lock file before the task may start anything. The next
run, holding the lock, reads that record; if a process of that group still lives it sends
TERM, then KILL after the job's kill_grace, and starts only once the group is empty. If
the group outlives that (a process stuck in the kernel) the run is refused with exit 73.
A process that leaves the group on purpose (setsid, setpgid: a daemon) is outside this
promise; the kernel never reuses the id of a group with live members, and a live leader
with another start time is a reused id, left alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import select
import signal
import sys
import time
from dataclasses import dataclass, field

from ..alerting import alerts
from ..alerting.path import observe_and_send
from ..checks.check import CHECK_KINDS, record_state
from ..foundation import metrics
from ..foundation.config import load_job
from ..foundation.errors import EXIT_ALREADY_RUNNING, EXIT_FAILED, EXIT_TIMEOUT, CaretakerError
from ..foundation.ledger import Ledger
from ..foundation.tasks import Context, load_task, run_task
from ..foundation.timestamps import now_iso

PR_SET_PDEATHSIG = 1


@dataclass
class Outcome:
    status: str  # ok, failed, timeout
    exit_code: int
    error: str | None = None
    output: str = ""
    result: dict = field(default_factory=dict)


@dataclass
class RunReport:
    job: str
    status: str  # ok, failed, timeout, dead, already_running
    exit_code: int
    run_id: str | None = None
    attempts: int = 0
    duration: float = 0.0
    error: str | None = None
    output: str = ""
    result: dict = field(default_factory=dict)

    def to_dict(self):
        return dict(self.__dict__)


class JobLog:
    """JSON lines, one file per job, one line per event, each with the run id."""

    def __init__(self, settings, job):
        self.job = job
        self.path = os.path.join(settings.log_dir, job + ".jsonl")
        self.run_id = None

    def __call__(self, event, **fields):
        record = {"ts": now_iso(milliseconds=True)}
        record.update(job=self.job, run_id=self.run_id, event=event, **fields)
        line = json.dumps(record, default=str) + "\n"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            sys.stderr.write(f"caretaker: cannot write {self.path}: {exc}\n")


def acquire_lock(settings, job):
    """Return an open, flock-ed file for the job, or None if another run holds it.

    `handle.previous` is what the last holder recorded there (see write_record)."""
    lock_dir = os.path.join(settings.state_dir, "locks")
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    handle = open(os.path.join(lock_dir, job + ".lock"), "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    handle.seek(0)
    try:
        previous = json.loads(handle.read() or "{}")
    except ValueError:
        previous = {}
    handle.previous = previous if isinstance(previous, dict) else {}
    write_record(handle)
    return handle


def write_record(handle, **fields):
    """The lock file's content: the runner's pid and, once forked, the task's process group."""
    handle.seek(0)
    handle.truncate(0)
    handle.write(json.dumps({"runner": os.getpid(), **fields}))
    handle.flush()


def _boot_id():
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        return handle.read().strip()


def _stat(pid):
    """/proc/PID/stat fields after the command name (state first), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rpartition(b")")[2].split()
    except OSError:
        return None


def _start_time(pid):
    """The process's start in clock ticks since boot, or None if it is gone or a zombie."""
    fields = _stat(pid)
    return None if fields is None or fields[0] in (b"Z", b"X") else int(fields[19])


def _group_alive(record):
    """Whether a process of the recorded task group still lives (zombies do not count)."""
    group, started = record.get("group"), record.get("started")
    if not isinstance(group, int) or group <= 1 or not isinstance(started, int) or record.get("boot") != _boot_id():
        return False
    leader = _start_time(group)
    if leader is not None and leader != started:
        return False  # the id now belongs to another process's group
    try:
        os.killpg(group, 0)  # the common case, an empty group, costs one call
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    for name in os.listdir("/proc"):
        fields = _stat(name) if name.isdigit() else None
        if fields and fields[0] not in (b"Z", b"X") and int(fields[2]) == group and int(fields[19]) >= started:
            return True
    return False


def stop_leftovers(record, grace, log, sleep=time.sleep):
    """End what a killed run left in its process group: TERM, KILL after `grace`.

    Returns True when nothing of it lives any more."""
    if not _group_alive(record):
        return True
    group = record["group"]
    log("leftovers_found", group=group)
    started = time.monotonic()
    _kill_group(group, signal.SIGTERM)
    while _group_alive(record):
        waited = time.monotonic() - started
        if waited > grace + 5.0:
            log("leftovers_alive", group=group)
            return False
        if waited >= grace:
            _kill_group(group, signal.SIGKILL)  # again each round: a member may have forked
        sleep(0.05)
    log("leftovers_stopped", group=group, seconds=round(time.monotonic() - started, 3))
    return True


def backoff_delay(retry, attempt):
    """Capped exponential backoff with jitter, for the wait after failed attempt `attempt`."""
    delay = min(retry["max_backoff"], retry["backoff"] * 2 ** (attempt - 1))
    return max(0.0, delay * (1 + random.uniform(-retry["jitter"], retry["jitter"])))  # noqa: S311 - not crypto


def run_job(settings, name, sleep=time.sleep) -> RunReport:
    job = load_job(settings, name)  # bad input stops here, before any state changes
    task = load_task(job.kind)
    log = JobLog(settings, name)
    lock = acquire_lock(settings, name)
    if lock is None:
        log("already_running")
        return RunReport(name, "already_running", EXIT_ALREADY_RUNNING, error=f"job {name} is already running")
    try:
        if not stop_leftovers(lock.previous, job.kill_grace, log):
            message = f"job {name}: processes of a killed run (group {lock.previous['group']}) survived TERM and KILL"
            write_record(lock, **{key: value for key, value in lock.previous.items() if key != "runner"})  # checked again next run
            return RunReport(name, "already_running", EXIT_ALREADY_RUNNING, error=message)
        return _run_locked(settings, job, task, log, sleep, lock)
    finally:
        lock.close()


def _run_locked(settings, job, task, log, sleep, lock):
    ledger = Ledger(settings.database)
    try:
        abandoned = ledger.mark_abandoned(job.name)
        if abandoned:
            log("abandoned_runs_closed", count=abandoned)
        run_id = os.urandom(6).hex()  # not `secrets`: its hmac and OpenSSL would load on every run
        log.run_id = run_id
        started = time.time()
        log("start", kind=job.kind, attempts=job.retry["attempts"], timeout=job.timeout)
        _ping(job, "start", log)
        attempt = 0
        while True:
            attempt += 1
            ledger.start_attempt(run_id, attempt, job.name, job.kind, os.getpid())
            outcome = execute(task, job, settings, run_id, attempt, lambda pid: _record_group(lock, pid))
            ledger.end_attempt(run_id, attempt, outcome.status, outcome.exit_code, outcome.error, outcome.output)
            log("attempt_end", attempt=attempt, status=outcome.status, exit_code=outcome.exit_code, error=outcome.error)
            retryable = outcome.status == "failed" and outcome.exit_code in job.retry["exit_codes"]
            if outcome.status == "ok" or not retryable or attempt >= job.retry["attempts"]:
                break
            delay = backoff_delay(job.retry, attempt)
            log("retry_wait", attempt=attempt, seconds=round(delay, 3))
            sleep(delay)
        status = outcome.status
        if status == "failed" and retryable and job.retry["attempts"] > 1:
            status = "dead"
            ledger.add_dead_letter("runner", job.name, run_id, outcome.error)
        ledger.record_result(job.name, started, status, outcome.exit_code)
        if job.kind in CHECK_KINDS:
            record_state(ledger, job.name, job.kind, status, outcome.exit_code, outcome.result)
        report = RunReport(
            job.name, status, outcome.exit_code, run_id, attempt, time.time() - started,
            outcome.error, outcome.output, outcome.result,
        )
        log("end", status=status, exit_code=outcome.exit_code, attempts=attempt, duration=round(report.duration, 3))
        _alert(settings, ledger, job, report, log)
        metrics.write_textfile(settings.metrics_dir, "caretaker_jobs.prom", metrics.job_families(ledger.job_stats()))
        _ping(job, "success" if status == "ok" else "fail", log, report.output)
        return report
    finally:
        ledger.close()


def _alert(settings, ledger, job, report, log):
    severity = "ok" if report.status == "ok" else "critical"
    summary = f"job {job.name} succeeded" if severity == "ok" else f"job {job.name} {report.status}: {report.error or 'no message'}"
    observe_and_send(
        ledger, settings, f"job:{job.name}", severity, summary, check=f"job:{job.name}",
        routes=job.alert["routes"], log=log,
        details={"run_id": report.run_id, "exit_code": report.exit_code, "attempts": report.attempts,
                 "output_tail": report.output[-1000:]},
        runbook=job.alert["runbook"], policy=alerts.Policy.from_job_alert(job.alert),
    )
    if ledger.spooled_alerts():
        from ..alerting import notify  # deferred: its HTTP, TLS and SMTP modules load only when something is sent

        notify.flush(settings, log, ledger)  # what earlier runs could not deliver


def _ping(job, phase, log, body=""):
    url = job.ping.get("url")
    if not url:
        return
    import urllib.request  # deferred: most jobs have no ping URL

    target = {"start": url.rstrip("/") + "/start", "success": url, "fail": url.rstrip("/") + "/fail"}[phase]
    try:
        request = urllib.request.Request(target, data=body[-10000:].encode(), method="POST")
        urllib.request.build_opener().open(request, timeout=job.ping["timeout"]).close()
    except Exception as exc:  # noqa: BLE001 - a ping must never fail the job
        log("ping_failed", phase=phase, error=str(exc))


# -- running one attempt in a child -------------------------------------------------


def _record_group(lock, pid):
    write_record(lock, group=pid, started=_start_time(pid), boot=_boot_id())


def execute(task, job, settings, run_id, attempt, on_fork=None) -> Outcome:
    """Run one attempt in a child; `on_fork(pid)` runs before the child may start anything."""
    out_read, out_write = os.pipe()
    result_read, result_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(out_read)
        os.close(result_read)
        os.close(go_write)
        _child(task, job, settings, run_id, out_write, result_write, go_read)
    os.close(out_write)
    os.close(result_write)
    os.close(go_read)
    try:
        if on_fork is not None:
            on_fork(pid)
        os.write(go_write, b"g")
    finally:
        os.close(go_write)
    return _supervise(pid, job, settings, out_read, result_read)


def _child(task, job, settings, run_id, out_write, result_write, go_read):
    code = EXIT_FAILED
    try:
        os.setsid()
        _die_with_parent()
        if os.read(go_read, 1) != b"g":  # the runner died (or failed) before recording the group
            os._exit(EXIT_FAILED)
        os.close(go_read)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_write, 1)
        os.dup2(out_write, 2)
        os.close(out_write)
        if task.program:
            program = task.program(job.args)
            if program["cwd"]:
                os.chdir(program["cwd"])
            os.execvpe(program["argv"][0], program["argv"], program["env"] or os.environ)
        ctx = Context(job=job.name, run_id=run_id, settings=settings, verbose=True)
        result = run_task(task, job.args, ctx)
        os.write(result_write, json.dumps({"result": result}, default=str).encode())
        code = 0
    except CaretakerError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        os.write(result_write, json.dumps({"error": exc.message, "details": exc.details}, default=str).encode())
        code = exc.exit_code
    except OSError as exc:  # exec failed
        sys.stderr.write(f"error: {exc}\n")
        os.write(result_write, json.dumps({"error": str(exc)}).encode())
        code = 127 if exc.errno == errno.ENOENT else 126
    except BaseException:  # noqa: BLE001 - report anything, then exit
        import traceback  # deferred: a run that does not crash never needs it

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent():
    import ctypes  # deferred: only the child needs it

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the runner died before prctl took effect
        os._exit(EXIT_FAILED)


def _kill_group(pid, sig):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _supervise(pid, job, settings, out_read, result_read) -> Outcome:
    deadline = time.monotonic() + job.timeout
    term_sent = None
    timed_out = False
    wait_status = None
    reaped_at = None
    tail = bytearray()
    result_bytes = bytearray()
    limit = settings.output_tail_bytes
    open_fds = [out_read, result_read]
    while open_fds or wait_status is None:
        now = time.monotonic()
        if wait_status is None:
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                wait_status = status
                reaped_at = now
                _kill_group(pid, signal.SIGKILL)  # nothing a task started outlives it
            elif now >= deadline and term_sent is None:
                timed_out = True
                term_sent = now
                _kill_group(pid, signal.SIGTERM)
            elif term_sent is not None and now >= term_sent + job.kill_grace:
                _kill_group(pid, signal.SIGKILL)
        if reaped_at is not None and now - reaped_at > 2.0:
            break  # a descendant in another session still holds the pipe
        if not open_fds:
            time.sleep(0.01)
            continue
        ready = select.select(open_fds, [], [], 0.05 if wait_status is None else 0.2)[0]
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
            elif fd == out_read:
                tail += chunk
                del tail[:-limit]
            else:
                result_bytes += chunk
    for fd in (out_read, result_read):
        os.close(fd)
    output = tail.decode("utf-8", "replace")
    message = json.loads(result_bytes) if result_bytes else {}
    exit_code = os.waitstatus_to_exitcode(wait_status)
    if timed_out:
        return Outcome("timeout", EXIT_TIMEOUT, f"timed out after {job.timeout}s", output)
    if exit_code < 0:
        return Outcome("failed", 128 - exit_code, f"killed by signal {-exit_code}", output)
    if exit_code != 0:
        error = message.get("error") or f"exited with status {exit_code}"
        return Outcome("failed", exit_code, error, output, message.get("details") or {})
    return Outcome("ok", 0, None, output, message.get("result") or {})
