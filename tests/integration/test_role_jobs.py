"""The jobs role and caretaker.ops.job_sync: every job of an owner validated before any is
written, only what differs written, jobs no longer listed removed, check mode and diff.

Systemd timers started on a booted host are proven in the molecule scenario molecule/runtime.
"""

import os
import pathlib

import pytest
from fixtures.ansible_run import role_play

GOOD = [
    {"name": "disk-report", "kind": "command", "args": {"argv": ["df", "-h"]}, "schedule": "H */6 * * *"},
    {"name": "tidy-tmp", "kind": "file_cleanup", "args": {"paths": ["/var/tmp/tidy"], "age": "7d"}, "schedule": "H 4 * * *"},
    {"name": "by-hand", "kind": "noop"},
]


@pytest.fixture
def sync(run_module, caretaker_host, caretaker_command, tmp_path):
    def run(jobs, owner="site", check=False, **extra):
        args = {"jobs": jobs, "owner": owner, "seed": "web1", "command": str(caretaker_command),
                "cron_dir": str(tmp_path / "cron.d"), "unit_dir": str(tmp_path / "units"), **extra}
        result = run_module("job_sync", args, check=check)
        return (1 if result.get("failed") else 0), result
    return run


def listing(path):
    return sorted(os.listdir(path)) if path.exists() else []


@pytest.mark.parametrize("position", [0, 1, 3])
def test_one_bad_job_among_good_ones_writes_none(tmp_path, playbook, caretaker_host, caretaker_command, position):
    bad = {"name": "broken", "kind": "file_cleanup", "args": {"paths": ["/"], "age": "1d"}, "schedule": "H 2 * * *"}
    jobs = [*GOOD[:position], bad, *GOOD[position:]]
    cron_before = listing(pathlib.Path("/etc/cron.d"))
    run = playbook.run(role_play("jobs", {
        "runtime_command": str(caretaker_command), "runtime_etc_dir": str(caretaker_host.etc), "jobs_config": jobs}))
    assert run.code != 0
    assert "job broken: args.paths[0]: refusing to clean the system directory /" in " ".join(run.failures)
    assert listing(caretaker_host.etc / "jobs") == []
    assert listing(pathlib.Path("/etc/cron.d")) == cron_before


def test_sync_writes_once_then_nothing_and_removes_what_is_no_longer_listed(sync, caretaker_host, tmp_path):
    code, result = sync(GOOD)
    assert code == 0 and result["changed"]
    assert listing(caretaker_host.etc / "jobs") == ["by-hand.yml", "disk-report.yml", "tidy-tmp.yml"]
    # jobs without a schedule run by hand only: no cron entry
    assert listing(tmp_path / "cron.d") == ["caretaker-disk-report", "caretaker-tidy-tmp"]
    entry = (tmp_path / "cron.d" / "caretaker-disk-report").read_text()
    assert "H" not in entry.splitlines()[-1].split()[0] and " */6 * * * root " in entry
    assert oct((caretaker_host.etc / "jobs" / "disk-report.yml").stat().st_mode & 0o777) == "0o600"

    code, result = sync(GOOD)
    assert code == 0 and not result["changed"] and result["written"] == []

    # another owner's job is left alone when this owner's list shrinks
    code, result = sync([{"name": "other", "kind": "noop", "schedule": "0 1 * * *"}], owner="monitoring")
    assert code == 0 and result["changed"]
    code, result = sync(GOOD[:1])
    assert code == 0 and result["changed"]
    assert listing(caretaker_host.etc / "jobs") == ["disk-report.yml", "other.yml"]
    assert listing(tmp_path / "cron.d") == ["caretaker-disk-report", "caretaker-other"]

    # a job installed by another owner is not taken over
    code, result = sync([*GOOD[:1], {"name": "other", "kind": "noop"}])
    assert code != 0 and "job other: name: is already installed by owner 'monitoring'" in result["msg"]


def test_check_mode_predicts_and_changes_nothing(sync, caretaker_host, tmp_path):
    sync(GOOD)
    before = {path.name: path.read_text() for path in (caretaker_host.etc / "jobs").iterdir()}
    changed = [dict(GOOD[0], timeout=60), *GOOD[1:2]]
    code, result = sync(changed, check=True)
    assert code == 0 and result["changed"]
    assert str(caretaker_host.etc / "jobs" / "disk-report.yml") in result["written"]
    assert str(caretaker_host.etc / "jobs" / "by-hand.yml") in result["removed"]
    assert {path.name: path.read_text() for path in (caretaker_host.etc / "jobs").iterdir()} == before


def test_systemd_scheduler_writes_units_and_drops_cron_entries(sync, caretaker_host, tmp_path):
    sync(GOOD)
    code, result = sync(GOOD, scheduler="systemd")
    assert code == 0 and result["changed"]
    assert listing(tmp_path / "cron.d") == []
    assert listing(tmp_path / "units") == ["caretaker-by-hand.service", "caretaker-disk-report.service",
                                           "caretaker-disk-report.timer", "caretaker-tidy-tmp.service", "caretaker-tidy-tmp.timer"]
    timer = (tmp_path / "units" / "caretaker-disk-report.timer").read_text()
    assert "OnCalendar=*-*-* 00,06,12,18:" in timer and "\nPersistent=true\n" in timer


def test_every_five_minutes_from_a_minute_of_the_host_and_a_bad_step_named(sync, caretaker_host, tmp_path):
    health = {"name": "health", "kind": "noop", "schedule": "H/5 * * * *"}
    minutes = set()
    for seed in ("web1", "web2", "web3", "web4", "web5", "web6"):
        code, _result = sync([health], seed=seed)
        assert code == 0
        minute = (tmp_path / "cron.d" / "caretaker-health").read_text().splitlines()[-1].split()[0]
        start, step = minute.split("-")[0], minute.split("/")[1]
        assert step == "5" and minute == f"{start}-59/5" and 0 <= int(start) <= 4
        minutes.add(start)
    assert len(minutes) > 1  # the hosts do not all start in the same minute

    code, result = sync([health], seed="web1", scheduler="systemd")
    assert code == 0
    timer = (tmp_path / "units" / "caretaker-health.timer").read_text()
    assert "OnCalendar=*-*-* *:" in timer and len(timer.split("OnCalendar=*-*-* *:")[1].split(":")[0].split(",")) == 12

    before = {path: path.read_text() for path in [*(tmp_path / "units").iterdir(), caretaker_host.etc / "jobs" / "health.yml"]}
    code, result = sync([{**health, "schedule": "H/0 * * * *"}], seed="web1", scheduler="systemd")
    assert code != 0 and "job health: schedule: bad step '0' in 'H/0'" in result["msg"]
    assert {path: path.read_text() for path in before} == before
