"""The cleanup role applied to this machine (temporary caretaker tree), then the job run for real."""

import os
import sys
import time

import pytest
from fixtures.ansible_local import failures, role_play
from fixtures.engine import ENGINE_PARENT


@pytest.fixture
def caretaker_command(caretaker_host, tmp_path):
    """The `caretaker` command as the runtime installs it, pointed at the temporary host."""
    path = tmp_path / "caretaker"
    path.write_text(f'#!/bin/sh\nCARETAKER_ETC="{caretaker_host.etc}" PYTHONPATH="{ENGINE_PARENT}" exec {sys.executable} -m caretaker.cli "$@"\n')
    path.chmod(0o755)
    return path


def converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries, check=False):
    variables = {"cleanup_caretaker_command": str(caretaker_command), "cleanup_jobs_dir": str(caretaker_host.etc / "jobs"),
                 "cleanup_cron_file": str(tmp_path / "cron.d-caretaker-cleanup"), "cleanup_config": entries}
    return ansible_playbook(role_play(tmp_path, "cleanup", variables), check=check)


def changed(output):
    return output["stats"]["localhost"]["changed"]


def test_job_installed_scheduled_and_it_cleans(tmp_path, ansible_playbook, caretaker_host, caretaker_command):
    data = tmp_path / "uploads"
    data.mkdir()
    old = data / "chunk-1.part"
    old.write_text("x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    (data / "chunk-2.part").write_text("fresh")
    entries = [{"name": "uploads", "paths": [str(data)], "patterns": ["*.part"], "age": "2d"}]

    code, output = converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries, check=True)
    assert code == 0 and changed(output) == 2
    assert os.listdir(caretaker_host.etc / "jobs") == []

    code, output = converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries)
    assert code == 0, failures(output)
    cron = (tmp_path / "cron.d-caretaker-cleanup").read_text()
    line = next(line for line in cron.splitlines() if "cleanup-uploads" in line)
    minute, hour = line.split()[:2]
    assert 0 <= int(minute) <= 59 and hour == "4"
    assert line.endswith(f"root {caretaker_command} run cleanup-uploads >/dev/null 2>&1")

    exit_code, report = caretaker_host.run("cleanup-uploads")
    assert exit_code == 0, report
    assert report["result"]["files"] == [str(old)]
    assert sorted(os.listdir(data)) == ["chunk-2.part"]

    code, output = converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries)
    assert code == 0 and changed(output) == 0


def test_undeclared_job_and_its_schedule_are_removed(tmp_path, ansible_playbook, caretaker_host, caretaker_command):
    jobs = caretaker_host.etc / "jobs"
    caretaker_host.add_job("nightly", kind="noop")  # not the role's: kept
    entries = [{"name": "a", "paths": ["/var/tmp/a"], "age": "1d"}, {"name": "b", "paths": ["/var/tmp/b"], "age": "1d"}]
    assert converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries)[0] == 0
    assert sorted(os.listdir(jobs)) == ["cleanup-a.yml", "cleanup-b.yml", "nightly.yml"]
    code, output = converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries[:1])
    assert code == 0, failures(output)
    assert sorted(os.listdir(jobs)) == ["cleanup-a.yml", "nightly.yml"]
    assert "cleanup-b" not in (tmp_path / "cron.d-caretaker-cleanup").read_text()
    assert converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, [])[0] == 0
    assert sorted(os.listdir(jobs)) == ["nightly.yml"] and not (tmp_path / "cron.d-caretaker-cleanup").exists()


def test_root_path_without_allow_flag_fails_naming_entry_and_field(tmp_path, ansible_playbook, caretaker_host, caretaker_command):
    entries = [{"name": "fine", "paths": ["/var/tmp/fine"], "age": "1d"}, {"name": "everything", "paths": ["/"], "age": "30d"}]
    code, output = converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries)
    assert code != 0
    message = " ".join(failures(output))
    assert "cleanup_config entry 'everything': args.paths[0]: refusing to clean the system directory /" in message
    assert os.listdir(caretaker_host.etc / "jobs") == []
    assert not (tmp_path / "cron.d-caretaker-cleanup").exists()
