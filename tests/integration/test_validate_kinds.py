"""Bad job files of every kind, refused by `caretaker validate` before anything is installed.

Each case is one bad value in an otherwise good job file: the real CLI exits 2, names the
file and the field, and writes no state. Every kind in the registry has a good job (which
passes) and at least one bad value here.
"""

import os

import pytest
from caretaker.foundation.tasks import KINDS

GOOD = {
    "noop": {},
    "command": {"argv": ["true"]},
    "file_cleanup": {"paths": ["/var/tmp/caretaker-test"], "age": "1.5d"},
    "pg_purge": {"tables": [{"name": "events", "time_column": "created_at", "older_than": "30d"}]},
    "job_retry": {"backend": "postgres", "table": {"name": "jobs"}},
    "pg_backup": {"database": "app", "directory": "/var/backups/caretaker-test"},
    "pg_restore": {"database": "app", "target": "app_copy"},
    "pg_restore_drill": {"database": "app"},
    "backup_prune": {"database": "app", "max_age": "2w"},
    "health_check": {"probes": [{"type": "disk", "warning": 80, "critical": 90}]},
    "cert_check": {"files": ["/etc/ssl/certs/site.pem"], "stages": ["30d", "1w"]},
    "log_alert": {"path": "/var/log/app.log", "rules": [{"name": "errors", "pattern": "ERROR", "window": "10m"}]},
    "updates_info": {},
    "unattended_upgrade": {},
}

TABLE = {"name": "events", "time_column": "created_at", "older_than": "30d"}
RULE = {"name": "errors", "pattern": "ERROR"}

# (kind, what to change in GOOD[kind]'s args (or, under "job", in the job file), field, words)
CASES = [
    ("noop", {"job": {"timeout": "2W"}}, "timeout", "units are lower case"),
    ("noop", {"job": {"timeout": 0}}, "timeout", "must be positive"),
    ("noop", {"job": {"kill_grace": "soon"}}, "kill_grace", "is not a duration"),
    ("noop", {"job": {"retry": {"attempts": 0}}}, "retry.attempts", "must be at least 1"),
    ("noop", {"job": {"retry": {"backoff": "1h", "max_backoff": "1m"}}}, "retry.max_backoff", "must be at least 3600"),
    ("noop", {"job": {"retry": {"jitter": 2}}}, "retry.jitter", "between 0 and 1"),
    ("noop", {"job": {"alert": {"routes": ["ops", "pager"]}}}, "alert.routes[1]", "alert route 'pager' is not in"),
    ("noop", {"job": {"alert": {"remind": "-1h"}}}, "alert.remind", "is not a duration"),
    ("noop", {"job": {"alert": {"remind_hours": 2, "remind": "2h"}}}, "alert.remind_hours", "not both"),
    ("noop", {"job": {"ping": {"url": "hc-ping.com/x"}}}, "ping.url", "http:// or https://"),
    ("noop", {"message": ["a", "list"]}, "args.message", "expected a string"),
    ("command", {"argv": []}, "args.argv", "must name a program"),
    ("command", {"chdir": "relative/dir"}, "args.chdir", "must be an absolute path"),
    ("file_cleanup", {"age": "1.5 fortnights"}, "args.age", "is not a duration"),
    ("file_cleanup", {"paths": ["/etc"]}, "args.paths[0]", "refusing to clean the system directory /etc"),
    ("file_cleanup", {"max_deletions": 0}, "args.max_deletions", "must be at least 1"),
    ("file_cleanup", {"min_free": "150%"}, "args.min_free", "between 0 and 100"),
    ("pg_purge", {"tables": []}, "args.tables", "at least one table"),
    ("pg_purge", {"tables": [{**TABLE, "older_than": "yesterday"}]}, "args.tables[0].older_than", "neither a duration"),
    ("pg_purge", {"tables": [{**TABLE, "older_than": "2999-01-01"}]}, "args.tables[0].older_than", "is in the future"),
    ("pg_purge", {"tables": [{**TABLE, "batch_size": 0}]}, "args.tables[0].batch_size", "must be at least 1"),
    ("pg_purge", {"tables": [{**TABLE, "lock_timeout": 0}]}, "args.tables[0].lock_timeout", "must be positive"),
    ("pg_purge", {"tables": [{**TABLE, "where": [{"column": "kind", "op": "in", "value": 3}]}]},
     "args.tables[0].where[0].value", "non-empty list"),
    ("pg_purge", {"tables": [{**TABLE, "archive": True}]}, "args.archive", "must say where archives go"),
    ("pg_purge", {"archive_level": 30}, "args.archive_level", "between 1 and 22"),
    ("job_retry", {"max_attempts": 0}, "args.max_attempts", "must be at least 1"),
    ("job_retry", {"never_retry": ["timeout", "([unclosed"]}, "args.never_retry[1]", "not a valid regular expression"),
    ("job_retry", {"backoff": {"factor": 0.5}}, "args.backoff.factor", "must be at least 1"),
    ("job_retry", {"backoff": {"base": "1d", "max_delay": "1h"}}, "args.backoff.max_delay", "must be at least 86400"),
    ("job_retry", {"backoff": {"jitter": "10 s please"}}, "args.backoff.jitter", "is not a duration"),
    ("job_retry", {"table": None}, "args.table", "is required when backend is postgres"),
    ("job_retry", {"backend": "rq", "queues": []}, "args.queues", "at least one queue"),
    ("job_retry", {"alert_routes": ["pager"]}, "args.alert_routes[0]", "alert route 'pager' is not in"),
    ("pg_backup", {"recipients": ["age1notakey"]}, "args.recipients[0]", "is not an age X25519 recipient"),
    ("pg_backup", {"compression_level": 30}, "args.compression_level", "between 1 and 22"),
    ("pg_backup", {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, "args.keep_last", "keeps nothing"),
    ("pg_backup", {"min_keep": 0}, "args.min_keep", "must be at least 1"),
    ("pg_backup", {"max_age": "12h"}, "args.max_age", "must be at least 1d"),
    ("pg_backup", {"destination": "s3"}, "args.bucket", "is required when destination is s3"),
    ("pg_backup", {"stale_upload": "soon"}, "args.stale_upload", "is not a duration"),
    ("pg_restore", {"backup": "yesterday"}, "args.backup", "neither latest nor a backup id"),
    ("pg_restore", {"read_timeout": 0}, "args.read_timeout", "must be positive"),
    ("pg_restore_drill", {"directory": "backups"}, "args.directory", "must be an absolute path"),
    ("pg_restore_drill", {"max_attempts": 0}, "args.max_attempts", "must be at least 1"),
    ("backup_prune", {"keep_daily": -1}, "args.keep_daily", "must not be negative"),
    ("backup_prune", {"max_age_days": 3, "max_age": "2w"}, "args.max_age_days", "not both"),
    ("health_check", {"probes": []}, "args.probes", "at least one probe"),
    ("health_check", {"probes": [{"type": "disk", "warning": 95, "critical": 90}]}, "args.probes[0].warning", "above critical"),
    ("health_check", {"probes": [{"type": "tcp"}]}, "args.probes[0].port", "is required for a tcp probe"),
    ("health_check", {"probes": [{"type": "tcp", "port": 70000}]}, "args.probes[0].port", "between 1 and 65535"),
    ("health_check", {"probes": [{"type": "http", "url": "ftp://example.com/"}]}, "args.probes[0].url", "http:// or https://"),
    ("health_check", {"probes": [{"type": "load", "timeout": "fast"}]}, "args.probes[0].timeout", "is not a duration"),
    ("cert_check", {"stages": [30, 14]}, "args.stages[0]", "write days as 30d"),
    ("cert_check", {"files": []}, "args.files", "at least one certificate file or endpoint"),
    ("cert_check", {"endpoints": [{"host": "example.com", "port": 0}]}, "args.endpoints[0].port", "between 1 and 65535"),
    ("cert_check", {"grace_days": 2, "grace": "3d"}, "args.grace_days", "not both"),
    ("log_alert", {"rules": [{"name": "x", "pattern": "([unclosed"}]}, "args.rules[0].pattern", "invalid regular expression"),
    ("log_alert", {"rules": [{**RULE, "window": "5 min"}]}, "args.rules[0].window", "is not a duration"),
    ("log_alert", {"rules": [{**RULE, "warning": 10, "critical": 5}]}, "args.rules[0].warning", "above critical"),
    ("log_alert", {"rules": [{**RULE, "baseline_factor": 2, "baseline_offset": 24}]}, "args.rules[0].baseline_offset",
     "must be at least 300"),
    ("log_alert", {"rules": []}, "args.rules", "at least one rule"),
    ("log_alert", {"path": "app.log"}, "args.path", "must be an absolute path"),
    ("updates_info", {"reboot_required_file": "reboot-required"}, "args.reboot_required_file", "must be an absolute path"),
    ("unattended_upgrade", {"program": "unattended-upgrade"}, "args.program", "must be an absolute path"),
]


def job_file(caretaker_host, name, kind, change=None):
    change = dict(change or {})
    job_fields = change.pop("job", {})
    return caretaker_host.add_job(name, kind=kind, args={**GOOD[kind], **change}, **job_fields)


@pytest.fixture
def host(caretaker_host):
    caretaker_host.write_settings(alert_routes={"ops": {"type": "webhook", "url": "https://hooks.example.com/x"}})
    return caretaker_host


def state_written(host):
    return host.state.exists() or host.logs.exists()


def test_every_kind_has_a_good_job_and_bad_values():
    assert {case[0] for case in CASES} == set(KINDS) == set(GOOD)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_the_good_job_of_each_kind_is_valid(host, kind):
    path = job_file(host, "good", kind)
    proc = host.cli("validate", str(path), check=0)
    assert f"valid {kind} job" in proc.stdout


@pytest.mark.parametrize(("kind", "change", "field", "words"), CASES, ids=[f"{case[0]}-{case[2]}" for case in CASES])
def test_a_bad_value_is_refused_naming_file_and_field(host, kind, change, field, words):
    path = job_file(host, "bad", kind, change)
    proc = host.cli("validate", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{path}: {field}: " in proc.stderr
    assert words in proc.stderr
    assert not state_written(host)


def test_several_files_are_all_checked_and_each_bad_one_reported(host):
    good = job_file(host, "fine", "command")
    bad = [job_file(host, f"bad-{index}", kind, change) for index, (kind, change, _field, _words) in enumerate(CASES[::9])]
    proc = host.cli("validate", str(good), *map(str, bad))
    assert proc.returncode == 2
    assert f"{good}: valid command job" in proc.stdout
    for path, (_kind, _change, field, _words) in zip(bad, CASES[::9], strict=True):
        assert f"{path}: {field}: " in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == len(bad)
    assert not state_written(host)


def test_root_refuses_files_others_could_change(host):
    """As root, run, check and validate refuse a job or settings file (or its folder) writable by others."""
    assert os.geteuid() == 0, "this machine runs the tests as root"
    path = job_file(host, "shared", "noop")
    path.chmod(0o666)
    for command in (("validate", str(path)), ("run", "shared")):
        proc = host.cli(*command)
        assert proc.returncode == 2
        assert f"{path} has mode 0666: writable by group or others" in proc.stderr
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    proc = host.cli("run", "shared")
    assert proc.returncode == 2
    assert f"{path} is owned by uid 65534" in proc.stderr
    os.chown(path, 0, 0)
    jobs = host.etc / "jobs"
    jobs.chmod(0o777)
    proc = host.cli("check", "shared")
    assert f"{jobs} has mode 0777" in proc.stdout + proc.stderr
    jobs.chmod(0o755)
    settings = host.etc / "caretaker.yml"
    settings.chmod(0o620)
    proc = host.cli("run", "shared")
    assert proc.returncode == 2
    assert f"{settings} has mode 0620" in proc.stderr
    assert not state_written(host)
    settings.chmod(0o644)
    host.cli("run", "shared", check=0)
