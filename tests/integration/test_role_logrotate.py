"""The logrotate role applied to this machine (in temporary directories), then real logrotate runs."""

import os
import signal
import subprocess
import sys
import time

from fixtures.ansible_run import role_play


def converge(tmp_path, playbook, entries, check=False, **more):
    variables = {"logrotate_directory": str(tmp_path / "logrotate.d"), "logrotate_schedule": False,
                 "logrotate_config": entries, **more}
    return playbook.run(role_play("logrotate", variables), check=check)


def reloads(tmp_path, count):
    """The app's reopen marker once it holds `count` lines: its handler runs when the machine lets it."""
    marker = tmp_path / "reloaded"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = marker.read_text() if marker.exists() else ""
        if text.count("\n") >= count:
            return text
        time.sleep(0.05)
    return marker.read_text() if marker.exists() else ""


def changed(output):
    return output["stats"]["localhost"]["changed"]


def logrotate(tmp_path, force=True):
    argv = ["logrotate", "--state", str(tmp_path / "status"), str(tmp_path / "logrotate.d" / "app")]
    if force:
        argv.insert(1, "--force")
    return subprocess.run(argv, capture_output=True, text=True, check=True)


def test_rotates_compresses_next_cycle_and_runs_postrotate(tmp_path, playbook):
    (tmp_path / "logrotate.d").mkdir()
    logs = tmp_path / "app"
    logs.mkdir()
    # An application that reopens its log on SIGHUP and records that it did.
    program = (
        "import signal, sys, time\n"
        f"marker = {str(tmp_path / 'reloaded')!r}\n"
        "def reopen(*_):\n"
        "    open(marker, 'a').write('reopened\\n')\n"
        "signal.signal(signal.SIGHUP, reopen)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline().strip() == "ready"
        entry = {"name": "app", "paths": [f"{logs}/*.log"], "rotate": 3, "create": "0640 root adm",
                 "postrotate": f"kill -HUP {app.pid}"}
        run = converge(tmp_path, playbook, [entry])
        assert run.code == 0, run.failures
        (logs / "web.log").write_text("first\n")
        logrotate(tmp_path)
        assert (logs / "web.log.1").read_text() == "first\n"  # delaycompress: not yet compressed
        assert oct((logs / "web.log").stat().st_mode & 0o777) == "0o640"
        assert reloads(tmp_path, 1) == "reopened\n"

        (logs / "web.log").write_text("second\n")
        logrotate(tmp_path)
        assert (logs / "web.log.1").read_text() == "second\n"
        gz = subprocess.run(["gzip", "-dc", str(logs / "web.log.2.gz")], capture_output=True, text=True, check=True)
        assert gz.stdout == "first\n"
        assert reloads(tmp_path, 2) == "reopened\nreopened\n"
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait()


def test_check_mode_then_apply_then_idempotent(tmp_path, playbook):
    (tmp_path / "logrotate.d").mkdir()
    entries = [{"name": "web", "paths": ["/var/log/web/*.log"], "maxsize": "100M", "dateext": True}]
    run = converge(tmp_path, playbook, entries, check=True)
    assert run.code == 0 and run.stats["changed"] == 1
    assert os.listdir(tmp_path / "logrotate.d") == []
    run = converge(tmp_path, playbook, entries)
    assert run.code == 0 and run.stats["changed"] == 1
    content = (tmp_path / "logrotate.d" / "web").read_text()
    assert "maxsize 100M" in content and "dateext" in content and content.startswith("#\n# Ansible managed")
    run = converge(tmp_path, playbook, entries, check=True)
    assert run.code == 0 and run.stats["changed"] == 0
    run = converge(tmp_path, playbook, entries)
    assert run.code == 0 and run.stats["changed"] == 0


def skipped_writes(run):
    """Whether the run skipped the role's check-and-write step because its files were in place."""
    return any(result.get("skipped") and "out_of_place" in str(result.get("false_condition", "")) for result in run.results)


def test_files_in_place_are_only_read_and_drift_is_put_right(tmp_path, playbook):
    (tmp_path / "logrotate.d").mkdir()
    entries = [{"name": "web", "paths": ["/var/log/web/*.log"]}, {"name": "api", "paths": ["/var/log/api/*.log"]}]
    run = converge(tmp_path, playbook, entries)
    assert run.code == 0 and run.stats["changed"] == 1 and not skipped_writes(run)
    web = tmp_path / "logrotate.d" / "web"
    written = web.read_text()
    run = converge(tmp_path, playbook, entries)
    assert run.code == 0 and run.stats["changed"] == 0 and skipped_writes(run)
    # Behind Ansible's back: a file's mode loosened, then another file edited; each is put right.
    (tmp_path / "logrotate.d" / "api").chmod(0o666)
    run = converge(tmp_path, playbook, entries)
    assert run.code == 0 and run.stats["changed"] == 1 and not skipped_writes(run)
    assert (tmp_path / "logrotate.d" / "api").stat().st_mode & 0o777 == 0o644
    web.write_text(written + "    rotate 700\n")
    run = converge(tmp_path, playbook, entries)
    assert run.code == 0 and run.stats["changed"] == 1 and not skipped_writes(run)
    assert web.read_text() == written


def test_inventory_levels_merge_by_name_and_absent_drops(tmp_path, playbook):
    (tmp_path / "logrotate.d").mkdir()
    run = converge(
        tmp_path, playbook,
        [{"name": "web", "paths": ["/var/log/web/*.log"]}, {"name": "jobs", "paths": ["/var/log/jobs.log"]}],
        logrotate_group_config=[{"name": "web", "rotate": 30}],
        logrotate_host_config=[{"name": "web", "frequency": "weekly"}, {"name": "jobs", "state": "absent"}],
    )
    assert run.code == 0, run.failures
    assert os.listdir(tmp_path / "logrotate.d") == ["web"]
    content = (tmp_path / "logrotate.d" / "web").read_text()
    assert "rotate 30" in content and "weekly" in content and "/var/log/web/*.log" in content


def test_undeclared_managed_files_are_removed_others_kept(tmp_path, playbook):
    directory = tmp_path / "logrotate.d"
    directory.mkdir()
    (directory / "dpkg").write_text("/var/log/dpkg.log {\n  monthly\n}\n")
    run = converge(tmp_path, playbook, [{"name": "a", "paths": ["/x/a.log"]}, {"name": "b", "paths": ["/x/b.log"]}])
    assert run.code == 0 and sorted(os.listdir(directory)) == ["a", "b", "dpkg"]
    run = converge(tmp_path, playbook, [{"name": "a", "paths": ["/x/a.log"]}])
    assert run.code == 0 and run.stats["changed"] == 1
    assert sorted(os.listdir(directory)) == ["a", "dpkg"]


def test_entry_logrotate_rejects_fails_naming_entry_and_field_and_keeps_old_file(tmp_path, playbook):
    directory = tmp_path / "logrotate.d"
    directory.mkdir()
    good = [{"name": "web", "paths": ["/var/log/web/*.log"], "maxsize": "10M"}]
    assert converge(tmp_path, playbook, good).code == 0
    before = (directory / "web").read_text()

    bad = [{"name": "web", "paths": ["/var/log/web/*.log"], "maxsize": "10Q"},
           {"name": "other", "paths": ["/var/log/other.log"]}]
    run = converge(tmp_path, playbook, bad)
    assert run.code != 0
    message = " ".join(run.failures)
    assert "entry 'web', field maxsize" in message and "unknown unit 'Q'" in message
    assert (directory / "web").read_text() == before
    assert sorted(os.listdir(directory)) == ["web"]  # the good entry was not installed either: nothing changed

    run = converge(tmp_path, playbook, [{"name": "web", "paths": ["/var/log/web/*.log"], "su": "nosuchuser adm"}])
    assert run.code != 0 and "entry 'web', field su" in " ".join(run.failures)
    assert (directory / "web").read_text() == before


def test_entry_without_paths_fails_naming_entry_and_field(tmp_path, playbook):
    (tmp_path / "logrotate.d").mkdir()
    run = converge(tmp_path, playbook, [{"name": "web", "rotate": 3}])
    assert run.code != 0 and "logrotate_config entry 'web': field paths" in " ".join(run.failures)
    assert os.listdir(tmp_path / "logrotate.d") == []
