"""caretaker.ops.job_info through Ansible, against a host layout the job runner filled."""


def test_job_info_reports_runs_and_dead_letters(caretaker_host, run_module):
    caretaker_host.add_job("nightly", kind="noop", schedule="17 3 * * *")
    caretaker_host.add_job("flaky", kind="command", args={"argv": ["sh", "-c", "exit 75"]}, retry={"attempts": 2, "backoff": 0.01})
    caretaker_host.run("nightly")
    caretaker_host.run("flaky")

    result = run_module("job_info", {"etc": str(caretaker_host.etc), "runs": 5}, check=True)
    assert result["changed"] is False
    jobs = {job["name"]: job for job in result["jobs"]}
    assert jobs["nightly"]["last_status"] == "ok"
    assert jobs["nightly"]["next_due"].split("T")[1].startswith("03:17")
    assert jobs["flaky"]["last_status"] == "dead"
    assert [run["attempt"] for run in jobs["flaky"]["runs"]] == [2, 1]
    assert [letter["job"] for letter in result["dead_letters"]] == ["flaky"]

    only = run_module("job_info", {"etc": str(caretaker_host.etc), "job": "nightly"})
    assert [job["name"] for job in only["jobs"]] == ["nightly"]
    assert only["dead_letters"] == []


def test_job_info_rejects_bad_arguments(run_module):
    result = run_module("job_info", {"runs": "many"})
    assert result["failed"] is True
    assert "runs" in result["msg"]


def test_status_and_job_info_show_the_check_state_and_since_when(caretaker_host, run_module):
    """A check job that ran fine but found a problem is CRITICAL in status, not just "ok"."""
    import socket

    from fixtures.ports import free_port

    port = free_port()
    caretaker_host.add_job("web-port", kind="health_check", args={"probes": [{"type": "tcp", "host": "127.0.0.1", "port": port}]})
    caretaker_host.run("web-port", check=0)
    job = caretaker_host.status()["jobs"][0]
    assert job["last_status"] == "ok"
    assert job["check"]["status"] == "CRITICAL" and str(port) in job["check"]["summary"]
    down_since = job["check"]["since"]
    caretaker_host.run("web-port", check=0)
    assert caretaker_host.status()["jobs"][0]["check"]["since"] == down_since  # still down: since stays
    table = caretaker_host.cli("status", check=0).stdout
    assert "CRITICAL" in table and f"check web-port: CRITICAL since {down_since.replace('+00:00', 'Z')}" in table

    with socket.create_server(("127.0.0.1", port)):
        caretaker_host.run("web-port", check=0)
        result = run_module("job_info", {"etc": str(caretaker_host.etc)})
    check = result["jobs"][0]["check"]
    assert check["status"] == "OK" and check["summary"] == "1 check(s) ok"
    assert check["since"] >= down_since
