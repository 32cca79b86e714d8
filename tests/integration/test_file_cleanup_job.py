"""file_cleanup through its two other front doors: a caretaker job and the Ansible module."""

import os
import time


def old_file(path, days=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("old")
    when = time.time() - days * 86400
    os.utime(path, (when, when))
    return path


def test_job_kind_deletes_and_reports(caretaker_host, tmp_path):
    data = tmp_path / "data"
    old_file(data / "a.tmp")
    (data / "new.tmp").write_text("new")
    caretaker_host.add_job("tmp-cleanup", kind="file_cleanup", args={"paths": [str(data)], "age": "7d"})
    code, report = caretaker_host.run("tmp-cleanup")
    assert code == 0, report
    assert report["result"]["files"] == [str(data / "a.tmp")]
    assert report["result"]["bytes_freed"] == 3
    assert sorted(path.name for path in data.iterdir()) == ["new.tmp"]


def test_job_with_root_path_fails_naming_the_field(caretaker_host, tmp_path):
    # a pattern no file on the host has: were the refusal broken, nothing of the machine is deleted
    args = {"paths": ["/"], "age": "7d", "patterns": ["*.caretaker-test-none"]}
    caretaker_host.add_job("bad-cleanup", kind="file_cleanup", args=args)
    proc = caretaker_host.cli("run", "bad-cleanup")
    assert proc.returncode == 2
    assert "paths[0]" in proc.stderr + proc.stdout and "allow_system_paths" in proc.stderr + proc.stdout


def test_module_check_mode_then_apply(tmp_path, run_module):
    old = old_file(tmp_path / "x.log")
    preview = run_module("file_cleanup", {"paths": [str(tmp_path)], "age": "1d"}, check=True)
    assert not preview.get("failed") and preview["changed"] is True and preview["files"] == [str(old)]
    assert old.exists()
    applied = run_module("file_cleanup", {"paths": [str(tmp_path)], "age": "1d"})
    assert not applied.get("failed") and applied["changed"] is True and not old.exists()
    again = run_module("file_cleanup", {"paths": [str(tmp_path)], "age": "1d"})
    assert not again.get("failed") and again["changed"] is False


def test_module_refuses_root_without_allow_flag(run_module):
    result = run_module("file_cleanup", {"paths": ["/"], "age": "1d"}, check=True)
    assert result["failed"] is True
    assert "paths[0]" in result["msg"] and "allow_system_paths" in result["msg"]


def test_validate_rejects_a_root_cleanup_job_before_it_is_installed(caretaker_host, tmp_path):
    path = tmp_path / "candidate.yml"
    path.write_text("kind: file_cleanup\nargs:\n  paths: [/tmp, /etc]\n  age: 7d\n")
    proc = caretaker_host.cli("validate", str(path), "--name", "cleanup-etc")
    assert proc.returncode == 2
    assert "job cleanup-etc: args.paths[1]: refusing to clean the system directory /etc" in proc.stderr
    good = tmp_path / "good.yml"
    good.write_text("kind: file_cleanup\nargs:\n  paths: [/var/tmp/app]\n  age: 7d\n")
    assert caretaker_host.cli("validate", str(good), "--name", "cleanup-app").returncode == 0
