"""supervisor_info and the alerting event listener against a real supervisord."""

import json
import os
import signal
import sys
import time

import pytest
from caretaker.foundation import argspec
from caretaker.foundation.errors import TransientError
from caretaker.foundation.tasks import Context
from caretaker.lib.supervisor import SUPERVISOR_INFO
from fixtures.engine import ENGINE_PARENT

SLEEPER = f"{sys.executable} -c 'import time; time.sleep(3600)'"


def info(supervisord, **params):
    args = argspec.validate(SUPERVISOR_INFO.argument_spec, {"server_url": supervisord.url, **params})
    return SUPERVISOR_INFO.run(args, Context())


def add_listener(supervisord, caretaker_host, *extra):
    env = f'CARETAKER_ETC="{caretaker_host.etc}",PYTHONPATH="{ENGINE_PARENT}"'
    supervisord.add_program(
        "caretaker-alerts",
        f"{sys.executable} -m caretaker.supervisor_listener {' '.join(extra)}",
        section="eventlistener",
        events="PROCESS_STATE_FATAL,PROCESS_STATE_EXITED,PROCESS_STATE_RUNNING,TICK_5",
        environment=env,
        stderr_logfile=str(supervisord.logs / "listener.err"),
    )


def wait_for_logged_exits(supervisord, program, count, timeout=20):
    """Wait until the listener has handled count unexpected exits of program (it logs each)."""
    log = supervisord.logs / "listener.err"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        handled = [json.loads(line) for line in lines if '"unexpected_exit"' in line]
        if any(entry["program"] == program and entry["recent_exits"] >= count for entry in handled):
            return
        time.sleep(0.1)
    raise AssertionError(f"the listener did not handle {count} exits of {program} in {timeout}s")


def route_to(caretaker_host, inbox):
    caretaker_host.write_settings(alert_routes={"sink": {"type": "webhook", "url": inbox.url("webhook")}}, default_routes=["sink"])


def test_info_reports_running_and_failed_programs(supervisord):
    supervisord.add_program("web", SLEEPER, startsecs=0)
    supervisord.add_program("broken", "/nonexistent/bin/worker", startretries=0, startsecs=0)
    supervisord.start()
    running = supervisord.wait_for("web", "RUNNING")
    supervisord.wait_for("broken", "FATAL")
    result = info(supervisord)
    by_name = {program["name"]: program for program in result["programs"]}
    assert result["supervisord_state"] == "RUNNING" and result["changed"] is False
    assert by_name["web"]["state"] == "RUNNING" and by_name["web"]["pid"] == running["pid"]
    os.kill(running["pid"], 0)  # the PID reported is a live process
    assert by_name["broken"]["state"] == "FATAL" and by_name["broken"]["pid"] is None
    assert result["not_running"] == ["broken"]
    assert [program["name"] for program in info(supervisord, names=["web"])["programs"]] == ["web"]


def test_info_without_supervisord_is_a_transient_error(tmp_path):
    args = argspec.validate(SUPERVISOR_INFO.argument_spec, {"server_url": f"unix://{tmp_path}/absent.sock"})
    with pytest.raises(TransientError, match="cannot reach supervisord"):
        SUPERVISOR_INFO.run(args, Context())


def test_sigkilled_worker_is_running_again_within_startsecs(supervisord):
    supervisord.add_program("worker", SLEEPER, startsecs=1, autorestart="true")
    supervisord.start()
    first = supervisord.wait_for("worker", "RUNNING")
    os.kill(first["pid"], signal.SIGKILL)
    killed = time.monotonic()
    again = supervisord.wait_for("worker", "RUNNING", timeout=10, other_than_pid=first["pid"])
    assert time.monotonic() - killed <= 1 + 1  # startsecs, plus supervisord's one-second tick
    os.kill(again["pid"], 0)


def test_fatal_program_alerts_then_resolves_when_it_runs(supervisord, caretaker_host, inbox):
    route_to(caretaker_host, inbox)
    add_listener(supervisord, caretaker_host)
    supervisord.add_program("importer", "/nonexistent/bin/importer", startretries=1, startsecs=0, autostart="true")
    supervisord.start()
    alert = inbox.wait_for("webhook", lambda a: a["check"] == "supervisor:importer" and a["action"] == "trigger")[0]
    assert alert["severity"] == "critical" and "importer entered FATAL" in alert["summary"]
    assert alert["host"] == "testhost"

    supervisord.add_program("importer", SLEEPER, startsecs=0)
    supervisord.ctl("reread")
    supervisord.ctl("update", "importer")
    supervisord.wait_for("importer", "RUNNING")
    resolve = inbox.wait_for("webhook", lambda a: a["check"] == "supervisor:importer" and a["action"] == "resolve")[0]
    assert resolve["key"] == alert["key"]


def test_crash_looping_program_alerts_once(supervisord, caretaker_host, inbox):
    route_to(caretaker_host, inbox)
    add_listener(supervisord, caretaker_host, "--exits", "3", "--window", "60")
    crasher = f"{sys.executable} -c 'import time; time.sleep(1.5); raise SystemExit(3)'"
    supervisord.add_program("flaky", crasher, startsecs=1, autorestart="unexpected", startretries=10)
    supervisord.start()
    alerts = inbox.wait_for("webhook", lambda a: a["key"] == "supervisor:flaky:exits", timeout=40)
    assert alerts[0]["severity"] == "warning" and "exited unexpectedly 3 times" in alerts[0]["summary"]
    assert alerts[0]["details"]["exits"] == 3
    wait_for_logged_exits(supervisord, "flaky", 4)  # a fourth exit is handled ...
    assert len([a for a in inbox.payloads("webhook") if a["key"] == "supervisor:flaky:exits"]) == 1  # ... without a second alert


def test_module_reports_through_ansible(supervisord, ansible_module):
    supervisord.add_program("web", SLEEPER, startsecs=0)
    supervisord.start()
    running = supervisord.wait_for("web", "RUNNING")
    code, result = ansible_module("supervisor_info", {"server_url": supervisord.url}, check=True)
    assert code == 0 and result["changed"] is False
    assert [(p["name"], p["state"], p["pid"]) for p in result["programs"]] == [("web", "RUNNING", running["pid"])]
