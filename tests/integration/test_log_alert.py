"""log_alert on real files: incremental reads, the real logrotate rotating while scans run, rules and alerts."""

import os
import subprocess
import threading
import time

import pytest
from caretaker.checks import log_alert
from caretaker.foundation.config import Settings
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.tasks import Context

ACCESS = '203.0.113.{n} - - [23/Nov/2026:10:00:00 +0000] "GET /item/{n} HTTP/1.1" {status} 512 "-" "curl/8"\n'


@pytest.fixture
def scanner(tmp_path):
    """Run log_alert on one log with one settings/ledger; returns the task result."""
    settings = Settings(etc_dir=str(tmp_path), host="web1", state_dir=str(tmp_path / "state"))
    log = tmp_path / "app.log"

    def run(rules=None, check_mode=False, **args):
        rules = [{"name": "errors", "pattern": "ERROR", "measure": "ratio"}] if rules is None else rules
        spec_args = {"path": str(log), "rules": rules, "start_at": "beginning", **args}
        return log_alert.LOG_ALERT.run(log_alert.LOG_ALERT.validate(spec_args), Context(settings=settings, check_mode=check_mode))

    run.log = log
    run.settings = settings
    return run


def append(path, text):
    with open(path, "a") as handle:
        handle.write(text)


def run_counts(outcome):
    details = outcome["findings"][0]["details"]
    return details["run_lines"], details["run_matches"]


def test_reads_only_what_is_new_and_only_complete_lines(scanner):
    append(scanner.log, "INFO a\nERROR b\n")
    assert run_counts(scanner()) == (2, 1)
    assert run_counts(scanner()) == (0, 0)
    append(scanner.log, "ERROR c\nERROR half-writ")
    assert run_counts(scanner()) == (1, 1)
    append(scanner.log, "ten\n")
    outcome = scanner()
    assert run_counts(outcome) == (1, 1)
    assert outcome["findings"][0]["details"]["samples"][-1] == "ERROR half-written"
    assert outcome["offset"] == os.path.getsize(scanner.log)


def test_check_mode_does_not_move_the_cursor(scanner):
    append(scanner.log, "ERROR a\n")
    assert run_counts(scanner(check_mode=True)) == (1, 1)
    assert run_counts(scanner()) == (1, 1)


def test_start_at_end_skips_history(scanner):
    append(scanner.log, "ERROR old\n" * 10)
    outcome = scanner(start_at="end")
    assert run_counts(outcome) == (0, 0)
    assert "started watching at the end of the file" in outcome["notes"]
    append(scanner.log, "ERROR new\n")
    assert run_counts(scanner(start_at="end")) == (1, 1)


def test_rename_rotation_reads_the_rest_of_the_old_file_first(scanner):
    append(scanner.log, "ERROR 1\n")
    scanner()
    append(scanner.log, "ERROR 2\nERROR 3\n")
    os.rename(scanner.log, str(scanner.log) + ".1")
    append(scanner.log, "INFO new file\n")
    outcome = scanner()
    assert run_counts(outcome) == (3, 2)
    assert "rotated" in outcome["notes"]


def test_two_rotations_between_runs_lose_nothing(scanner):
    append(scanner.log, "ERROR 1\n")
    scanner()
    append(scanner.log, "ERROR 2\n")
    os.rename(scanner.log, str(scanner.log) + ".1")
    append(scanner.log, "ERROR 3\nINFO 4\n")
    os.rename(str(scanner.log) + ".1", str(scanner.log) + ".2")
    os.rename(scanner.log, str(scanner.log) + ".1")
    append(scanner.log, "ERROR 5\n")
    outcome = scanner()
    assert run_counts(outcome) == (4, 3)
    assert f"read {scanner.log}.1, rotated since" in outcome["notes"]


def test_lines_written_through_a_handle_held_across_the_rename_are_counted(scanner):
    scanner.log.touch()
    scanner()  # the cursor sits at offset 0 of an empty log
    with open(scanner.log, "a", buffering=1) as app:  # line-buffered, as an application's logger
        app.write("ERROR 1\n")
        os.rename(scanner.log, str(scanner.log) + ".1")
        scanner.log.touch()  # logrotate's create
        app.write("ERROR 2\n")  # the application has not reopened yet
    append(scanner.log, "ERROR 3\n")  # reopened
    outcome = scanner()
    assert run_counts(outcome) == (3, 3)
    assert f"read the rest of {scanner.log}.1" in outcome["notes"]


COMPRESSORS = {None: "nocompress", "gz": "compress", "xz": "compress\n  compresscmd /usr/bin/xz\n  compressext .xz",
               "zst": "compress\n  compresscmd /usr/bin/zstd\n  compressoptions -q\n  compressext .zst"}


@pytest.mark.parametrize("compressed", list(COMPRESSORS))
def test_real_logrotate_create_mode_loses_no_line_of_a_writer_that_reopens_late(tmp_path, scanner, compressed):
    config = tmp_path / "logrotate.conf"
    config.write_text(f"{scanner.log} {{\n  rotate 5\n  create\n  {COMPRESSORS[compressed]}\n}}\n")
    with open(scanner.log, "a", buffering=1) as app:
        app.write("INFO started\n")
        scanner()
        app.write("ERROR 1\n")
        if compressed:  # compressed in the same logrotate run, so it must hold the lines first
            app.write("ERROR 2\n")
        subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "lr.state"), str(config)], check=True)
        if not compressed:
            app.write("ERROR 2\n")  # into the renamed file, until the application reopens
    append(scanner.log, "ERROR 3\n")
    rotated = f"{scanner.log}.1" + (f".{compressed}" if compressed else "")
    assert os.path.exists(rotated)
    outcome = scanner()
    assert run_counts(outcome) == (3, 3)
    assert f"read the rest of {rotated}" in outcome["notes"]


def test_truncation_in_place_starts_over_and_copy_is_finished(scanner):
    append(scanner.log, "ERROR 1\nINFO 2\n")
    scanner()
    append(scanner.log, "ERROR 3\n")
    # copytruncate done by hand: copy, then truncate the same inode
    with open(scanner.log, "rb") as source:
        (scanner.log.parent / "app.log.1").write_bytes(source.read())
    os.truncate(scanner.log, 0)
    append(scanner.log, "ERROR 4\n")
    outcome = scanner()
    assert run_counts(outcome) == (2, 2)
    assert "truncated (copytruncate or rewritten)" in outcome["notes"]


def test_rewritten_file_of_the_same_length_is_read_again(scanner):
    append(scanner.log, "ERROR a\n")
    scanner()
    with open(scanner.log, "r+") as handle:
        handle.write("INFO b\nX")
    assert run_counts(scanner()) == (1, 0)


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_real_logrotate_while_a_writer_and_scans_run(tmp_path, scanner, mode):
    config = tmp_path / "logrotate.conf"
    config.write_text(f"{scanner.log} {{\n  rotate 20\n  {mode}\n  missingok\n  nocompress\n}}\n")
    scanner.log.touch()
    written = {"lines": 0, "errors": 0}
    stop = threading.Event()
    pause = threading.Lock()

    def writer():
        number = 0
        while not stop.is_set():
            with pause:
                fd = os.open(scanner.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                error = number % 3 == 0
                os.write(fd, f"{'ERROR' if error else 'INFO'} line {number}\n".encode())
                os.close(fd)
                written["lines"] += 1
                written["errors"] += error
            number += 1
            if number % 50 == 0:
                time.sleep(0.001)

    counted = {"lines": 0, "errors": 0, "scans": 0}
    surprises = []  # asserted in the test's own thread: a failed assert in this one would go unseen
    scan_stop = threading.Event()

    def scans():
        while not scan_stop.is_set():
            outcome = scanner()
            if outcome["status"] == "unknown":  # between logrotate's rename and create there is no log
                message = outcome["findings"][0]["message"]
                if "does not exist" not in message:
                    surprises.append(message)
                continue
            lines, errors = run_counts(outcome)
            counted["lines"] += lines
            counted["errors"] += errors
            counted["scans"] += 1

    threads = [threading.Thread(target=writer), threading.Thread(target=scans)]
    for thread in threads:
        thread.start()
    try:
        for _rotation in range(6):
            # rotate once the writer has written 200 more lines and a scan has ended since the last
            # rotation (the first one sets the cursor), however slow this machine is
            target, scans = written["lines"] + 200, counted["scans"]
            deadline = time.monotonic() + 120
            while (written["lines"] < target or counted["scans"] == scans) and time.monotonic() < deadline:
                time.sleep(0.01)
            # Scans keep running while logrotate works. The writer is held meanwhile: copytruncate
            # loses what is written between its copy and its truncate (logrotate(8)), and a writer
            # that still holds the renamed file can write to it after the scan has finished it.
            with pause:
                subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "lr.state"), str(config)], check=True)
    finally:
        stop.set()
        threads[0].join()
        scan_stop.set()
        threads[1].join()
    lines, errors = run_counts(scanner())
    counted["lines"] += lines
    counted["errors"] += errors
    del counted["scans"]
    assert surprises == []
    rotated = [name for name in os.listdir(tmp_path) if name.startswith("app.log.")]
    assert len(rotated) == 6
    assert written["lines"] >= 1200, "the writer stalled: the rotations saw too little traffic"
    assert counted == written


def test_access_log_status_classes_ratio_and_min_volume(scanner):
    lines = [ACCESS.format(n=n, status=500 if n % 10 == 0 else 200) for n in range(100)]
    lines.append(ACCESS.format(n=7, status=404))
    append(scanner.log, "".join(lines))
    rules = [
        {"name": "5xx", "status": ["5xx"], "measure": "ratio", "warning": 5, "critical": 20},
        {"name": "404", "status": ["404"], "warning": 1, "critical": 10},
        {"name": "quiet", "status": ["5xx"], "warning": 1, "critical": 2, "min_volume": 1000},
    ]
    found = {f["name"]: f for f in scanner(rules=rules)["findings"]}
    assert (found["log:5xx"]["status"], found["log:5xx"]["value"], found["log:5xx"]["unit"]) == ("warning", 9.9, "%")
    assert found["log:5xx"]["details"]["samples"][-1].endswith('"GET /item/90 HTTP/1.1" 500 512 "-" "curl/8"')
    assert len(found["log:5xx"]["details"]["samples"]) == 5
    assert (found["log:404"]["status"], found["log:404"]["value"]) == ("warning", 1)
    assert found["log:quiet"]["status"] == "ok"
    assert "below min_volume 1000" in found["log:quiet"]["message"]


def test_window_sums_runs_and_forgets_old_ones(scanner):
    from caretaker.foundation.ledger import Ledger

    rule = [{"name": "errors", "pattern": "ERROR", "warning": 3, "critical": 5, "window": 3600}]
    append(scanner.log, "ERROR\n" * 2)
    assert scanner(rules=rule)["status"] == "ok"
    append(scanner.log, "ERROR\n" * 2)
    outcome = scanner(rules=rule)
    assert (outcome["status"], outcome["findings"][0]["value"]) == ("warning", 4)
    ledger = Ledger(scanner.settings.database)
    ledger.db.execute("UPDATE log_counts SET ts = ts - 3601")  # the window's hour passes, however slow this machine
    ledger.close()
    append(scanner.log, "ERROR\n")
    assert scanner(rules=rule)["findings"][0]["value"] == 1


def test_baseline_comparison(scanner, tmp_path):
    from caretaker.foundation.ledger import Ledger

    rule = [{"name": "errors", "pattern": "ERROR", "warning": 5, "critical": 50, "window": 600, "baseline_factor": 2, "baseline_offset": "24h"}]
    append(scanner.log, "INFO\n")
    scanner(rules=rule)
    ledger = Ledger(str(tmp_path / "state" / "state.db"))
    # yesterday, same window: 10 errors
    ledger.db.execute("INSERT INTO log_counts VALUES ('adhoc', ?, 'errors', ?, 100, 10, NULL)", (str(scanner.log), time.time() - 86400 - 60))
    ledger.close()
    append(scanner.log, "ERROR\n" * 15)
    ok = scanner(rules=rule)["findings"][0]
    assert (ok["status"], ok["details"]["baseline"]) == ("ok", 10)
    assert "within 2.0x of the baseline" in ok["message"]
    append(scanner.log, "ERROR\n" * 10)
    assert scanner(rules=rule)["findings"][0]["status"] == "warning"


@pytest.mark.parametrize(
    ("rules", "field", "message"),
    [
        ([{"name": "x", "pattern": "(unclosed"}], "rules[0].pattern", "invalid regular expression"),
        ([{"name": "x", "status": ["5xx", "6xx"]}], "rules[0].status[1]", "not a status code or class"),
        ([{"name": "x"}], "rules[0].pattern", "exactly one of pattern or status"),
        ([{"name": "x", "pattern": "a", "warning": "many"}], "rules[0].warning", "is not a number"),
        ([{"name": "x", "pattern": "a", "measure": "ratio", "critical": 150}], "rules[0].critical", "at most 100"),
        ([{"name": "x", "pattern": "a"}, {"name": "x", "pattern": "b"}], "rules[1].name", "used twice"),
        ([], "rules", "at least one rule"),
        ([{"name": "x", "pattern": "a*"}], "rules[0].pattern", "matches an empty line"),
        ([{"name": "x", "pattern": "a(?i)b"}], "rules[0].pattern", "invalid regular expression"),
    ],
)
def test_bad_rules_name_the_field(scanner, rules, field, message):
    scanner.log.write_text("x\n")
    with pytest.raises(ConfigError) as error:
        scanner(rules=rules)
    assert error.value.field == field
    assert message in error.value.message


def test_missing_log_is_unknown_and_names_the_path(scanner, caretaker_host, tmp_path):
    outcome = scanner()
    assert (outcome["status"], outcome["exit_code"]) == ("unknown", 3)
    assert outcome["findings"][0]["message"] == f"path: {scanner.log} does not exist"
    caretaker_host.add_job("applog", kind="log_alert", args={"path": str(tmp_path / "nope.log"), "rules": [{"name": "e", "pattern": "E"}]})
    proc = caretaker_host.cli("check", "applog")
    assert proc.returncode == 3
    assert proc.stdout.startswith("CARETAKER UNKNOWN - log:e: path: ")


def test_scheduled_log_alert_sends_samples_and_runbook_then_resolves(caretaker_host, inbox, tmp_path):
    log = tmp_path / "access.log"
    log.write_text(ACCESS.format(n=1, status=200))
    caretaker_host.write_settings(alert_routes={"slack": {"type": "slack", "url": inbox.url("slack")}}, default_routes=["slack"])
    caretaker_host.add_job("weblog", kind="log_alert", alert={"after": 1},
                           args={"path": str(log), "runbook": "https://runbooks.example/5xx",
                                 "rules": [{"name": "5xx", "status": ["5xx"], "critical": 3, "window": 2}]})
    caretaker_host.run("weblog", check=0)
    append(log, "".join(ACCESS.format(n=n, status=503) for n in range(5)))
    caretaker_host.run("weblog", check=0)
    caretaker_host.run("weblog", check=0)
    time.sleep(2.1)
    caretaker_host.run("weblog", check=0)
    messages = inbox.payloads("slack")
    assert [message["text"].split(" ")[0] for message in messages] == ["CRITICAL", "RESOLVED"]
    fields = {field["title"]: field["value"] for field in messages[0]["attachments"][0]["fields"]}
    assert fields["Runbook"] == "https://runbooks.example/5xx"
    assert '"GET /item/4 HTTP/1.1" 503' in fields["Details"]


def test_a_line_counts_once_however_often_it_matches(scanner):
    append(scanner.log, "ERROR one ERROR two ERROR\nINFO\nERROR\n")
    count_rule = [{"name": "errors", "pattern": "ERROR"}]
    finding = scanner(rules=count_rule)["findings"][0]
    assert (finding["details"]["run_matches"], finding["value"]) == (2, 2)
    assert finding["details"]["samples"] == ["ERROR one ERROR two ERROR", "ERROR"]
    assert finding["details"]["run_lines"] is None  # a count rule needs no total
