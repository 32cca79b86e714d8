"""Bad job files and unknown jobs: exit 2, a message naming file and field, no state written."""

import pytest


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ({"kind": "teleport"}, "kind: unknown job kind 'teleport'"),
        ({"kind": "noop", "timeout": "soon"}, "timeout: 'soon' is not a duration"),
        ({"kind": "noop", "timeout": 0}, "timeout: must be positive"),
        ({"kind": "noop", "retry": {"attempts": 0}}, "retry.attempts: must be at least 1"),
        ({"kind": "noop", "retry": {"tries": 3}}, "retry: unsupported option(s) tries"),
        ({"kind": "command", "args": {}}, "args.argv: is required"),
        ({"kind": "command", "args": {"argv": []}}, "args.argv: must name a program to run"),
        ({"kind": "command", "args": {"argv": "ls", "shell": True}}, "unsupported option(s) shell"),
        ({"kind": "noop", "schedule": "61 * * * *"}, "schedule: '61' is outside 0-59 in the minute field"),
        ({"kind": "noop", "schedule": "* * *"}, "needs 5 fields"),
        ({"description": "no kind"}, "kind: is required"),
    ],
)
def test_invalid_job_file_is_refused_with_field_and_nothing_recorded(caretaker_host, definition, expected):
    path = caretaker_host.add_job("broken", **definition)
    proc = caretaker_host.cli("run", "broken")
    assert proc.returncode == 2
    assert str(path) in proc.stderr
    assert expected in proc.stderr
    assert not (caretaker_host.state / "state.db").exists()
    assert not caretaker_host.logs.exists()


def test_unknown_job(caretaker_host):
    proc = caretaker_host.cli("run", "ghost")
    assert proc.returncode == 2
    assert "unknown job 'ghost'" in proc.stderr


def test_yaml_that_is_not_a_mapping(caretaker_host):
    (caretaker_host.etc / "jobs" / "list.yml").write_text("- kind: noop\n")
    proc = caretaker_host.cli("validate", str(caretaker_host.etc / "jobs" / "list.yml"))
    assert proc.returncode == 2
    assert "must be a mapping" in proc.stderr


def test_validate_accepts_a_good_file(caretaker_host):
    path = caretaker_host.add_job("fine", kind="command", args={"argv": ["true"]}, schedule="H 3 * * *".replace("H", "7"))
    proc = caretaker_host.cli("validate", str(path), check=0)
    assert "valid command job" in proc.stdout


def test_status_reports_invalid_job_without_failing(caretaker_host):
    caretaker_host.add_job("good", kind="noop")
    caretaker_host.add_job("bad", kind="noop", timeout=-5)
    jobs = {job["name"]: job for job in caretaker_host.status()["jobs"]}
    assert jobs["good"]["valid"] is True
    assert jobs["bad"]["valid"] is False
    assert "timeout" in jobs["bad"]["error"]
