"""A module or job that needs a package the Python running it lacks fails with one line naming
the package and the runtime's interpreter, never a traceback. The Python here is a real bare
virtualenv: the standard library and nothing else."""

import json
import subprocess
import sys

import pytest
from fixtures.engine import ENGINE_PARENT


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory):
    where = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python3"
    assert subprocess.run([python, "-c", "import psycopg"], capture_output=True, check=False).returncode != 0
    return str(python)


PURGE = {"conninfo": "dbname=app", "tables": [{"name": "sessions", "time_column": "seen", "older_than": "30d"}]}


def test_module_names_the_package_and_the_interpreter(run_module, bare_python, caretaker_host):
    bare_host(caretaker_host)
    result = run_module("pg_purge", {**PURGE, "etc": str(caretaker_host.etc)}, interpreter=bare_python)
    assert result["failed"] is True
    assert result["msg"] == (f"needs the Python package psycopg, which {bare_python} cannot import: use the caretaker runtime's "
                             "Python /opt/caretaker/bin/python3 (for a module, set ansible_python_interpreter on the task)")
    assert result["missing_package"] == "psycopg"
    assert "Traceback" not in json.dumps(result)
    # a settings file only PyYAML reads: the same message, naming the file
    (caretaker_host.etc / "caretaker.yml").write_text("host: db1\n")
    result = run_module("job_info", {"etc": str(caretaker_host.etc)}, interpreter=bare_python)
    assert result["msg"].startswith(f"{caretaker_host.etc}/caretaker.yml: is not JSON, and reading YAML needs the Python package PyYAML")


def bare_host(caretaker_host, **jobs):
    """The host's files as JSON, which a Python without PyYAML reads too."""
    (caretaker_host.etc / "caretaker.yml").write_text(json.dumps(caretaker_host.settings))
    for name, definition in jobs.items():
        (caretaker_host.etc / "jobs" / f"{name}.yml").write_text(json.dumps(definition))
    return {**caretaker_host.env, "PYTHONPATH": str(ENGINE_PARENT)}


def test_job_fails_with_one_line_naming_the_package(bare_python, caretaker_host):
    env = bare_host(caretaker_host, purge={"kind": "pg_purge", "args": PURGE})
    proc = subprocess.run([bare_python, "-m", "caretaker.cli", "run", "purge", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["error"].startswith("needs the Python package psycopg, which ") and "\n" not in report["error"]
    assert "/opt/caretaker/bin/python3" in report["error"]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_check_reports_unknown_naming_the_package(bare_python, caretaker_host, tmp_path):
    env = bare_host(caretaker_host, certs={"kind": "cert_check", "args": {"files": [str(tmp_path / "x.pem")]}})
    proc = subprocess.run([bare_python, "-m", "caretaker.cli", "check", "certs"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.startswith("CARETAKER UNKNOWN - needs the Python package cryptography, which ")
    assert "Traceback" not in proc.stdout + proc.stderr
