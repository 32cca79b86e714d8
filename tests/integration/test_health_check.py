"""health_check against real things: a tmpfs filled up, HTTP(S) servers, ports, supervisord, PostgreSQL."""

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
from caretaker.checks import health_check
from caretaker.foundation.config import Settings
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.tasks import Context


def run_probes(*probes):
    args = health_check.HEALTH_CHECK.validate({"probes": list(probes)})
    return health_check.HEALTH_CHECK.run(args, Context(settings=Settings()))


def by_name(outcome):
    return {finding["name"]: finding for finding in outcome["findings"]}


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MiB tmpfs: a disk we can really fill."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=200", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


class Site:
    """An HTTP(S) server whose status and body the test sets."""

    def __init__(self, tls_context=None):
        self.status, self.body, self.delay = 200, b"all good", 0.0
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(site.delay)
                self.send_response(site.status)
                self.end_headers()
                self.wfile.write(site.body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_context:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    server = Site()
    yield server
    server.close()


@pytest.fixture
def tls_site(tmp_path):
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = Site(context)
    server.ca_file = str(ca_file)
    yield server
    server.close()


def test_disk_and_inodes_of_a_filling_tmpfs(tmpfs):
    probes = [{"type": "disk", "path": str(tmpfs), "warning": 50, "critical": 90}, {"type": "inodes", "path": str(tmpfs), "warning": 50, "critical": 90}]
    found = by_name(run_probes(*probes))
    assert found[f"disk:{tmpfs}"]["status"] == "ok"
    (tmpfs / "blob").write_bytes(b"x" * (3 * 1024 * 1024))  # 3 of 4 MiB
    found = by_name(run_probes(*probes))
    disk = found[f"disk:{tmpfs}"]
    assert disk["status"] == "warning"
    df = subprocess.run(["df", "--output=pcent", str(tmpfs)], capture_output=True, text=True, check=True).stdout.split()[-1]
    assert abs(disk["value"] - float(df.rstrip("%"))) <= 1
    assert found[f"inodes:{tmpfs}"]["status"] == "ok"
    with pytest.raises(OSError):
        (tmpfs / "more").write_bytes(b"x" * (2 * 1024 * 1024))
    assert by_name(run_probes(*probes))[f"disk:{tmpfs}"]["status"] == "critical"
    for number in range(185):
        (tmpfs / f"f{number}").touch()
    assert by_name(run_probes(*probes))[f"inodes:{tmpfs}"]["status"] == "critical"


def test_disk_without_path_covers_the_real_mounts():
    outcome = run_probes({"type": "disk", "warning": 100, "critical": 100})
    names = [finding["name"] for finding in outcome["findings"]]
    assert "disk:/" in names or any(name.startswith("disk:/") for name in names)
    assert all(finding["status"] in ("ok", "critical") for finding in outcome["findings"])


def test_missing_disk_path_is_unknown_naming_the_field(tmp_path):
    outcome = run_probes({"type": "disk", "path": str(tmp_path / "gone")})
    assert outcome["status"] == "unknown"
    assert outcome["exit_code"] == 3
    assert "probes[0].path" in outcome["findings"][0]["message"]


def test_load_memory_swap_cpu_measure_this_host():
    outcome = run_probes({"type": "load", "period": 1, "warning": 1000, "critical": 1000}, {"type": "memory"}, {"type": "swap"},
                         {"type": "cpu", "interval": 0.2, "warning": 101, "critical": 101})
    found = by_name(outcome)
    assert found["load"]["value"] == pytest.approx(os.getloadavg()[0] / os.cpu_count(), abs=0.5)
    with open("/proc/meminfo") as handle:
        info = {line.split(":")[0]: int(line.split()[1]) for line in handle}
    expected = 100 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]
    assert found["memory"]["value"] == pytest.approx(expected, abs=2)
    assert 0 <= found["cpu"]["value"] <= 100
    assert found["swap"]["status"] in ("ok", "warning", "critical")
    tight = by_name(run_probes({"type": "memory", "warning": 0, "critical": 0}))
    assert tight["memory"]["status"] == "critical"


def test_http_status_body_and_latency(site):
    url = f"http://127.0.0.1:{site.port}/health"
    probe = {"type": "http", "url": url, "name": "web", "body_contains": "good", "warning": 150, "critical": 1000}
    assert by_name(run_probes(probe))["web"]["status"] == "ok"
    site.delay = 0.3
    slow = by_name(run_probes(probe))["web"]
    assert slow["status"] == "warning"
    assert slow["value"] >= 300
    site.delay = 0.0
    site.body = b"maintenance"
    assert "does not contain 'good'" in by_name(run_probes(probe))["web"]["message"]
    site.status = 500
    failing = by_name(run_probes(probe))["web"]
    assert (failing["status"], failing["message"]) == ("critical", "HTTP 500, expected 200")
    assert by_name(run_probes({**probe, "expect_status": [500], "body_contains": None}))["web"]["status"] == "ok"


def test_https_verification(tls_site):
    url = f"https://localhost:{tls_site.port}/"
    untrusted = by_name(run_probes({"type": "http", "url": url, "name": "tls"}))["tls"]
    assert untrusted["status"] == "critical"
    assert "TLS verification failed" in untrusted["message"]
    assert by_name(run_probes({"type": "http", "url": url, "name": "tls", "ca_file": tls_site.ca_file}))["tls"]["status"] == "ok"
    assert by_name(run_probes({"type": "http", "url": url, "name": "tls", "verify_tls": False}))["tls"]["status"] == "ok"


def test_tcp_open_and_closed_ports(site):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    found = by_name(run_probes({"type": "tcp", "port": site.port, "name": "open"}, {"type": "tcp", "port": closed, "name": "closed"}))
    assert found["open"]["status"] == "ok"
    assert found["open"]["unit"] == "ms"
    assert found["closed"]["status"] == "critical"
    assert "refused" in found["closed"]["message"].lower()


def test_systemd_that_cannot_answer_is_unknown_never_ok():
    if not shutil.which("systemctl"):
        pytest.skip("needs systemctl installed")
    outcome = run_probes({"type": "systemd", "units": ["cron.service"]})
    finding = outcome["findings"][0]
    booted = os.path.isdir("/run/systemd/system")
    if booted:
        assert finding["status"] in ("ok", "critical")
    else:
        assert finding["status"] == "unknown"
        assert outcome["exit_code"] == 3


def test_supervisor_programs_running_and_stopped(tmp_path):
    sock = tmp_path / "supervisor.sock"
    config = tmp_path / "supervisord.conf"
    config.write_text(
        f"[unix_http_server]\nfile={sock}\n[supervisord]\nlogfile={tmp_path}/supervisord.log\npidfile={tmp_path}/sd.pid\nnodaemon=true\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n"
        "[program:worker]\ncommand=sleep 600\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)d\nstartsecs=0\n"
        "[program:mailer]\ncommand=sleep 600\nautostart=false\n"
    )
    daemon = subprocess.Popen(["supervisord", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = {"type": "supervisor", "programs": ["worker", "mailer", "ghost"], "supervisor_config": str(config)}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = by_name(run_probes(probe))
            if found["supervisor:worker"]["status"] == "ok":
                break
            time.sleep(0.2)
        assert found["supervisor:worker"]["details"] == {"worker:worker_0": "RUNNING", "worker:worker_1": "RUNNING"}
        assert found["supervisor:mailer"]["status"] == "critical"
        assert "STOPPED" in found["supervisor:mailer"]["message"]
        assert found["supervisor:ghost"]["status"] == "critical"
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    gone = by_name(run_probes(probe))["supervisor:worker"]
    assert gone["status"] == "unknown"


def test_postgres_select_one_and_lag_on_a_primary(postgres):
    dsn = f"host={postgres.host} port={postgres.port} user={postgres.user} password={postgres.password} dbname=postgres"
    found = by_name(run_probes({"type": "postgres", "dsn": dsn, "name": "db"}, {"type": "postgres", "dsn": dsn, "name": "lag", "replication_lag": True}))
    assert found["db"]["status"] == "ok"
    assert found["db"]["unit"] == "ms"
    assert found["lag"]["status"] == "ok"
    assert found["lag"]["details"] == {"role": "primary"}
    wrong = dsn.replace(postgres.password, "not-the-password-9")
    failed = by_name(run_probes({"type": "postgres", "dsn": wrong, "name": "db"}))["db"]
    assert failed["status"] == "critical"
    assert "password authentication failed" in failed["message"]
    assert "not-the-password-9" not in json.dumps(failed)


@pytest.mark.parametrize(
    ("probe", "field", "message"),
    [
        ({"type": "disk", "warning": "lots"}, "probes[0].warning", "is not a number"),
        ({"type": "disk", "warning": 95, "critical": 90}, "probes[0].warning", "must not be above critical"),
        ({"type": "disk", "critical": -1}, "probes[0].critical", "must not be negative"),
        ({"type": "tcp"}, "probes[0].port", "is required for a tcp probe"),
        ({"type": "http", "url": "ftp://example.org"}, "probes[0].url", "http:// or https://"),
        ({"type": "smoke"}, "probes[0].type", "must be one of"),
    ],
)
def test_bad_probes_name_the_field(probe, field, message):
    with pytest.raises(ConfigError) as error:
        run_probes(probe)
    assert error.value.field == field
    assert message in error.value.message


def test_cli_check_speaks_nagios(caretaker_host, site):
    caretaker_host.add_job("web", kind="health_check", args={"probes": [
        {"type": "http", "url": f"http://127.0.0.1:{site.port}/", "name": "web", "warning": 500, "critical": 2000},
        {"type": "memory", "warning": 100, "critical": 100}]})
    proc = caretaker_host.cli("check", "web")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("CARETAKER OK - 2 check(s) ok | 'web'=")
    assert ";500;2000;0" in proc.stdout
    site.status = 503
    proc = caretaker_host.cli("check", "web")
    assert proc.returncode == 2
    assert proc.stdout.startswith("CARETAKER CRITICAL - web: HTTP 503, expected 200")
    caretaker_host.add_job("broken", kind="health_check", args={"probes": [{"type": "disk", "path": "/nonexistent-mount"}]})
    proc = caretaker_host.cli("check", "broken")
    assert proc.returncode == 3
    assert proc.stdout.startswith("CARETAKER UNKNOWN")
    caretaker_host.add_job("bad", kind="health_check", args={"probes": [{"type": "disk", "warning": "x"}]})
    proc = caretaker_host.cli("check", "bad")
    assert (proc.returncode, "args.probes[0].warning" in proc.stdout) == (3, True)
    caretaker_host.add_job("plain", kind="noop")
    assert caretaker_host.cli("check", "plain").returncode == 3
    assert json.loads(caretaker_host.cli("check", "web", "--json").stdout)["status"] == "critical"


def test_scheduled_health_check_alerts_once_resolves_once_and_writes_metrics(caretaker_host, site, inbox):
    from prometheus_client.parser import text_string_to_metric_families

    caretaker_host.write_settings(alert_routes={"hook": {"type": "webhook", "url": inbox.url("hook")}}, default_routes=["hook"])
    caretaker_host.add_job("health", kind="health_check", alert={"after": 2, "runbook": "https://runbooks.example/web"},
                           args={"probes": [{"type": "http", "url": f"http://127.0.0.1:{site.port}/", "name": "web"}]})
    site.status = 500
    for _attempt in range(4):
        code, report = caretaker_host.run("health")
        assert code == 0, report
    alerts = inbox.payloads("hook")
    assert [(a["action"], a["check"], a["severity"]) for a in alerts] == [("trigger", "health:web", "critical")]
    assert alerts[0]["runbook"] == "https://runbooks.example/web"
    assert alerts[0]["details"]["status"] == 500
    text = (caretaker_host.metrics / "caretaker_health_check_health.prom").read_text()
    samples = {(s.name, s.labels.get("check")): s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("caretaker_check_status", "web")] == 2
    site.status = 200
    caretaker_host.run("health")
    caretaker_host.run("health")
    assert [a["action"] for a in inbox.payloads("hook")] == ["trigger", "resolve"]
