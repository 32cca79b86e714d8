"""The supervisor role applied to this machine against a real supervisord in a temporary directory."""

import os
import pathlib
import sys
import xmlrpc.client

import pytest
from fixtures.ansible_run import role_play
from fixtures.engine import ENGINE_PARENT

SLEEP = f"{sys.executable} -c 'import time; time.sleep(3600)'"


def converge(tmp_path, playbook, supervisord, programs, check=False, diff=False, **more):
    variables = {"supervisor_conf_dir": str(supervisord.conf_dir), "supervisor_config_file": str(supervisord.config),
                 "supervisor_config": programs, **more}
    return playbook.run(role_play("supervisor", variables), check=check, diff=diff)


def pid(supervisord, name):
    return supervisord.info(name)["pid"]


@pytest.fixture
def two_workers(tmp_path, playbook, supervisord):
    supervisord.start()
    programs = [
        {"name": "mailer", "command": SLEEP, "startsecs": 0, "environment": {"QUEUE": "mail"}},
        {"name": "thumbs", "command": SLEEP, "startsecs": 0, "numprocs": 1},
    ]
    run = converge(tmp_path, playbook, supervisord, programs)
    assert run.code == 0, run.failures
    supervisord.wait_for("mailer", "RUNNING")
    supervisord.wait_for("thumbs", "RUNNING")
    return programs


def test_converge_is_idempotent_and_check_mode_changes_nothing(tmp_path, playbook, supervisord, two_workers):
    before = {name: pid(supervisord, name) for name in ("mailer", "thumbs")}
    run = converge(tmp_path, playbook, supervisord, two_workers, check=True)
    assert run.code == 0 and run.stats["changed"] == 0
    run = converge(tmp_path, playbook, supervisord, two_workers)
    assert run.code == 0 and run.stats["changed"] == 0
    assert {name: pid(supervisord, name) for name in ("mailer", "thumbs")} == before


def test_changing_one_program_restarts_only_that_one(tmp_path, playbook, supervisord, two_workers):
    mailer, thumbs = pid(supervisord, "mailer"), pid(supervisord, "thumbs")
    two_workers[0]["environment"] = {"QUEUE": "mail-priority"}

    run = converge(tmp_path, playbook, supervisord, two_workers, check=True)
    assert run.code == 0 and run.stats["changed"] == 1 and pid(supervisord, "mailer") == mailer

    run = converge(tmp_path, playbook, supervisord, two_workers)
    assert run.code == 0, run.failures
    new = supervisord.wait_for("mailer", "RUNNING")
    assert new["pid"] != mailer
    assert b"QUEUE=mail-priority" in pathlib.Path(f"/proc/{new['pid']}/environ").read_bytes()
    assert pid(supervisord, "thumbs") == thumbs


def test_removed_program_is_stopped_and_its_file_removed(tmp_path, playbook, supervisord, two_workers):
    thumbs = pid(supervisord, "thumbs")
    old_mailer = pid(supervisord, "mailer")
    run = converge(tmp_path, playbook, supervisord, [two_workers[1]])
    assert run.code == 0, run.failures
    with pytest.raises(xmlrpc.client.Fault, match="BAD_NAME"):
        supervisord.info("mailer")
    assert not (supervisord.conf_dir / "mailer.conf").exists()
    assert not os.path.exists(f"/proc/{old_mailer}")
    assert pid(supervisord, "thumbs") == thumbs


def test_secret_environment_reaches_the_program_but_not_the_output(tmp_path, playbook, supervisord):
    supervisord.start()
    secret = "s3cr3t-token-value"
    programs = [{"name": "api", "command": SLEEP, "startsecs": 0, "secret_environment": {"API_TOKEN": secret}}]
    run = converge(tmp_path, playbook, supervisord, programs, diff=True)
    assert run.code == 0, run.failures
    assert secret not in run.stdout
    running = supervisord.wait_for("api", "RUNNING")
    assert f"API_TOKEN={secret}".encode() in pathlib.Path(f"/proc/{running['pid']}/environ").read_bytes()
    assert oct((supervisord.conf_dir / "api.conf").stat().st_mode & 0o777) == "0o600"


def test_program_without_command_fails_naming_it_and_changes_nothing(tmp_path, playbook, supervisord, two_workers):
    before = sorted(os.listdir(supervisord.conf_dir))
    broken = [*two_workers, {"name": "reports", "directory": "/srv"}]
    broken[0] = {**broken[0], "environment": {"QUEUE": "changed"}}
    run = converge(tmp_path, playbook, supervisord, broken)
    assert run.code != 0
    assert "supervisor_config entry 'reports': field command: is required" in " ".join(run.failures)
    assert sorted(os.listdir(supervisord.conf_dir)) == before
    assert "QUEUE=\"mail\"" in (supervisord.conf_dir / "mailer.conf").read_text()


def test_listener_installed_by_the_role_alerts_on_fatal(tmp_path, playbook, supervisord, caretaker_host, inbox):
    caretaker_host.write_settings(alert_routes={"sink": {"type": "webhook", "url": inbox.url("webhook")}}, default_routes=["sink"])
    supervisord.start()
    programs = [{"name": "importer", "command": "/nonexistent/importer", "startretries": 1, "startsecs": 0}]
    run = converge(
        tmp_path, playbook, supervisord, programs,
        supervisor_listener=True, supervisor_listener_python=sys.executable,
        supervisor_listener_engine_dir=str(ENGINE_PARENT), supervisor_listener_environment={"CARETAKER_ETC": str(caretaker_host.etc)},
    )
    assert run.code == 0, run.failures
    alert = inbox.wait_for("webhook", lambda a: a["check"] == "supervisor:importer")[0]
    assert alert["action"] == "trigger" and alert["severity"] == "critical"
