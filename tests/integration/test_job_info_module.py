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
