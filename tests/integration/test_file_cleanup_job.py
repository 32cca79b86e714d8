"""file_cleanup through its two other front doors: a caretaker job and the Ansible module."""

import json
import os
import pathlib
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(os.environ.get("VIRTUAL_ENV", "/work/main/.venv")) / "bin"


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
    caretaker_host.add_job("bad-cleanup", kind="file_cleanup", args={"paths": ["/"], "age": "7d"})
    proc = caretaker_host.cli("run", "bad-cleanup")
    assert proc.returncode == 2
    assert "paths[0]" in proc.stderr + proc.stdout and "allow_system_paths" in proc.stderr + proc.stdout


def collection_path():
    """An ansible_collections tree whose caretaker/ops is this checkout."""
    base = ROOT / ".build" / "collections"
    link = base / "ansible_collections" / "caretaker" / "ops"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(ROOT, link)
    return base


def ansible_module(args, check=False):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collection_path()), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json"}
    argv = [str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-m", "caretaker.ops.file_cleanup", "-a", json.dumps(args),
            "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}"]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    output = json.loads(proc.stdout)
    return proc.returncode, output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_module_check_mode_then_apply(tmp_path):
    old = old_file(tmp_path / "x.log")
    code, preview = ansible_module({"paths": [str(tmp_path)], "age": "1d"}, check=True)
    assert code == 0 and preview["changed"] is True and preview["files"] == [str(old)]
    assert old.exists()
    code, applied = ansible_module({"paths": [str(tmp_path)], "age": "1d"})
    assert code == 0 and applied["changed"] is True and not old.exists()
    code, again = ansible_module({"paths": [str(tmp_path)], "age": "1d"})
    assert code == 0 and again["changed"] is False


def test_module_refuses_root_without_allow_flag():
    code, result = ansible_module({"paths": ["/"], "age": "1d"}, check=True)
    assert code != 0 and result["failed"] is True
    assert "paths[0]" in result["msg"] and "allow_system_paths" in result["msg"]
