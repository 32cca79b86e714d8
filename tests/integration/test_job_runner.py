"""The job runner against real processes: locks, kills, timeouts, retries, metrics, alerts."""

import json
import os
import signal
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_noop_job_succeeds_and_is_recorded(caretaker_host):
    caretaker_host.add_job("hello", kind="noop", schedule="*/5 * * * *")
    code, report = caretaker_host.run("hello")
    assert code == 0
    assert report["status"] == "ok"
    job = caretaker_host.status()["jobs"][0]
    assert job["name"] == "hello"
    assert job["last_status"] == "ok"
    assert job["next_due"] is not None
    events = [event["event"] for event in caretaker_host.log_events("hello")]
    assert events == ["start", "attempt_end", "end"]
    assert len({event["run_id"] for event in caretaker_host.log_events("hello")}) == 1


def test_second_run_is_refused_while_first_holds_the_lock(caretaker_host, tmp_path):
    marker = tmp_path / "started"
    caretaker_host.add_job("slow", kind="command", args={"argv": ["sh", "-c", f"touch {marker}; sleep 5"]})
    first = caretaker_host.popen("run", "slow")
    try:
        assert wait_for(marker.exists)
        proc = caretaker_host.cli("run", "slow")
        assert proc.returncode == 73
        assert "already running" in proc.stderr
    finally:
        first.kill()
        first.wait()


def test_sigkill_of_the_runner_does_not_block_the_next_run(caretaker_host, tmp_path):
    marker = tmp_path / "started"
    caretaker_host.add_job("victim", kind="command", args={"argv": ["sh", "-c", f"touch {marker}; sleep 30"]})
    first = caretaker_host.popen("run", "victim")
    assert wait_for(marker.exists)
    first.send_signal(signal.SIGKILL)
    first.wait()
    marker.unlink()
    caretaker_host.add_job("victim", kind="command", args={"argv": ["true"]})
    code, report = caretaker_host.run("victim")
    assert code == 0, report
    runs = json.loads(caretaker_host.cli("status", "--json", "--runs", "5").stdout)
    statuses = [run["status"] for run in runs["jobs"][0]["runs"]]
    assert statuses == ["ok", "killed"]


def test_timeout_kills_grandchildren(caretaker_host, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = f"sh -c 'echo $$ > {pidfile}; exec sleep 60' & wait"
    caretaker_host.add_job("hang", kind="command", args={"argv": ["sh", "-c", script]}, timeout=1, kill_grace=1)
    code, report = caretaker_host.run("hang")
    assert code == 124
    assert report["status"] == "timeout"
    grandchild = int(pidfile.read_text())
    assert wait_for(lambda: not os.path.exists(f"/proc/{grandchild}") or _is_zombie(grandchild), timeout=5)


def test_a_job_that_ignores_term_is_killed_after_kill_grace(caretaker_host, tmp_path):
    survived = tmp_path / "survived"
    script = f"trap '' TERM; sleep 8; touch {survived}"
    caretaker_host.add_job("stubborn", kind="command", args={"argv": ["sh", "-c", script]}, timeout=1, kill_grace=1)
    code, report = caretaker_host.run("stubborn")
    assert (code, report["status"]) == (124, "timeout")
    assert not survived.exists()  # without the KILL the runner waits for sh, which then writes it


def _lingering_job(tmp_path, kind):
    """A job whose grandchild outlives its parent and ignores TERM, writing start and end marks."""
    marks, pidfile, linger = tmp_path / "marks", tmp_path / "linger.pid", tmp_path / "linger"
    linger.write_text(f"#!/bin/sh\ntrap '' TERM\necho $$ > {pidfile}\necho start >> {marks}\nsleep 8\necho end >> {marks}\n")
    linger.chmod(0o755)
    if kind == "command":  # sh is the runner's child, linger its child
        return marks, pidfile, {"kind": "command", "args": {"argv": ["sh", "-c", f"{linger} & wait"]}}
    # a Python kind: the runner's forked child runs the program, linger, as its child
    return marks, pidfile, {"kind": "unattended_upgrade", "args": {"program": str(linger)}}


@pytest.mark.parametrize("kind", ["command", "unattended_upgrade"])
def test_the_run_after_a_killed_run_starts_only_once_its_processes_are_gone(caretaker_host, tmp_path, kind):
    marks, pidfile, first = _lingering_job(tmp_path, kind)
    caretaker_host.add_job("lingering", kill_grace=1, **first)
    runner = caretaker_host.popen("run", "lingering")
    assert wait_for(lambda: marks.exists() and pidfile.exists() and pidfile.read_text().strip())
    child = json.loads((caretaker_host.state / "locks" / "lingering.lock").read_text())["group"]
    grandchild = int(pidfile.read_text())
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    # PDEATHSIG: the runner's own child dies with it, while the grandchild lives on
    assert wait_for(lambda: _is_zombie(child), timeout=5)
    assert not _is_zombie(grandchild)
    # the next run: its job notes whether anything of the killed run is still alive as it starts
    probe = (
        f"import pathlib; pid = pathlib.Path({str(pidfile)!r}).read_text().strip()\n"
        f"try: state = pathlib.Path(f'/proc/{{pid}}/stat').read_text().rpartition(')')[2].split()[0]\n"
        f"except OSError: state = 'Z'\n"
        f"open({str(marks)!r}, 'a').write('overlap\\n' if state not in 'ZX' else 'next\\n')\n"
    )
    caretaker_host.add_job("lingering", kind="command", args={"argv": [sys.executable, "-c", probe]}, kill_grace=1)
    code, report = caretaker_host.run("lingering")
    assert code == 0, report
    assert _is_zombie(grandchild)
    assert marks.read_text().splitlines() == ["start", "next"]
    events = [event["event"] for event in caretaker_host.log_events("lingering")]
    assert events[-6:] == ["leftovers_found", "leftovers_stopped", "abandoned_runs_closed", "start", "attempt_end", "end"]


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_transient_failures_are_retried_then_dead_lettered(caretaker_host, tmp_path):
    counter = tmp_path / "count"
    script = f"echo x >> {counter}; exit 75"
    caretaker_host.add_job(
        "flaky", kind="command", args={"argv": ["sh", "-c", script]}, retry={"attempts": 3, "backoff": 0.05, "max_backoff": 0.1, "jitter": 0.5}
    )
    code, report = caretaker_host.run("flaky")
    assert code == 75
    assert report["status"] == "dead"
    assert report["attempts"] == 3
    assert len(counter.read_text().splitlines()) == 3
    waits = [event["seconds"] for event in caretaker_host.log_events("flaky") if event["event"] == "retry_wait"]
    assert len(waits) == 2 and all(0.0 <= wait <= 0.15 for wait in waits)
    status = caretaker_host.status()
    assert status["jobs"][0]["dead_letters"] == 1
    assert status["dead_letters"][0]["ref"] == report["run_id"]
    caretaker_host.cli("ack", "flaky", check=0)
    assert caretaker_host.status()["jobs"][0]["dead_letters"] == 0


def test_permanent_failure_is_not_retried(caretaker_host, tmp_path):
    counter = tmp_path / "count"
    caretaker_host.add_job("broken", kind="command", args={"argv": ["sh", "-c", f"echo x >> {counter}; exit 3"]}, retry={"attempts": 3, "backoff": 0.01})
    code, report = caretaker_host.run("broken")
    assert code == 3
    assert report["status"] == "failed"
    assert len(counter.read_text().splitlines()) == 1
    assert caretaker_host.status()["jobs"][0]["dead_letters"] == 0


def test_retry_recovers_when_a_later_attempt_succeeds(caretaker_host, tmp_path):
    counter = tmp_path / "count"
    script = f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ] || exit 75"
    caretaker_host.add_job("recovers", kind="command", args={"argv": ["sh", "-c", script]}, retry={"attempts": 4, "backoff": 0.01})
    code, report = caretaker_host.run("recovers")
    assert (code, report["status"], report["attempts"]) == (0, "ok", 2)


def test_metrics_parse_with_prometheus_parser(caretaker_host):
    caretaker_host.add_job("good", kind="noop")
    caretaker_host.add_job("bad", kind="command", args={"argv": ["false"]})
    caretaker_host.run("good")
    caretaker_host.run("bad")
    caretaker_host.run("bad")
    text = (caretaker_host.metrics / "caretaker_jobs.prom").read_text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {(sample.name, sample.labels["job"]): sample.value for family in families.values() for sample in family.samples}
    assert samples[("caretaker_job_failures_total", "bad")] == 2
    assert samples[("caretaker_job_failures_total", "good")] == 0
    assert samples[("caretaker_job_last_exit_code", "bad")] == 1
    assert ("caretaker_job_last_success_timestamp_seconds", "bad") not in samples
    assert samples[("caretaker_job_last_success_timestamp_seconds", "good")] > time.time() - 60
    assert samples[("caretaker_job_duration_seconds", "good")] >= 0
    assert not [name for name in os.listdir(caretaker_host.metrics) if name.endswith(".tmp")]


def test_one_alert_after_n_failures_and_one_resolve(caretaker_host, inbox, tmp_path):
    url = inbox.url("webhook")
    caretaker_host.write_settings(alert_routes={"ops": {"type": "webhook", "url": url}}, default_routes=["ops"])
    flag = tmp_path / "healthy"
    caretaker_host.add_job("watched", kind="command", args={"argv": ["test", "-e", str(flag)]}, alert={"after": 2})
    for _attempt in range(4):
        caretaker_host.run("watched")
    alerts = inbox.payloads("webhook")
    assert [alert["action"] for alert in alerts] == ["trigger"]
    assert alerts[0]["check"] == "job:watched"
    assert alerts[0]["host"] == "testhost"
    assert alerts[0]["severity"] == "critical"
    flag.touch()
    caretaker_host.run("watched")
    caretaker_host.run("watched")
    alerts = inbox.payloads("webhook")
    assert [alert["action"] for alert in alerts] == ["trigger", "resolve"]


def test_ping_urls_get_start_and_result(caretaker_host, inbox):
    url = inbox.url("ping")
    caretaker_host.add_job("pinged", kind="noop", ping={"url": url})
    caretaker_host.run("pinged")
    caretaker_host.add_job("pinged", kind="command", args={"argv": ["sh", "-c", "echo oops; exit 1"]}, ping={"url": url})
    caretaker_host.run("pinged")
    received = [item for item in inbox.receiver.requests if item["path"].startswith(inbox.prefix)]
    paths = [item["path"].removeprefix(inbox.prefix + "/ping") for item in received]
    assert paths == ["/start", "", "/start", "/fail"]
    assert b"oops" in received[-1]["body"]
