"""The certbot role on this machine against pebble: check mode, issue, idempotence, a forced
renewal whose deploy hook reloads a TLS server that then serves the new certificate."""

import os
import pathlib
import signal
import ssl
import subprocess
import sys
import time

import pytest
from cryptography import x509
from fixtures.ports import free_port

HERE = pathlib.Path(__file__).resolve().parent


def certbot_play(pebble, tmp_path, certificates, **extra):
    return [
        {
            "name": "certbot",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [
                {
                    "role": "caretaker.ops.certbot",
                    "certbot_config": certificates,
                    "certbot_acme_server": pebble.directory,
                    "certbot_acme_ca_bundle": pebble.ca_bundle,
                    "certbot_config_dir": str(tmp_path / "letsencrypt"),
                    "certbot_work_dir": str(tmp_path / "work"),
                    "certbot_logs_dir": str(tmp_path / "logs"),
                    # this machine's own schedule is not ours to change; molecule/certbot tests it
                    "certbot_renew_schedule": "none",
                    **extra,
                }
            ],
        }
    ]


def served_serial(port):
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def file_serial(path):
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_issue_renew_and_reload(pebble, playbook, tmp_path):
    pidfile, reloads = tmp_path / "server.pid", tmp_path / "reloads"
    webroot = tmp_path / "www"
    webroot.mkdir()
    certificates = [
        {
            "name": "site",
            "domains": ["site.example.test", "www.example.test"],
            "method": "webroot",
            "webroot_path": str(webroot),
            "deploy_commands": [["pkill", "-HUP", "--pidfile", str(pidfile)]],
        },
        {"name": "api", "domains": ["api.example.test"], "method": "standalone", "http01_port": free_port()},
    ]
    plays = certbot_play(pebble, tmp_path, certificates)
    config_dir = tmp_path / "letsencrypt"

    run = playbook.run(plays, check=True)
    assert run.code == 0, run.failures or run.stderr
    assert not config_dir.exists()

    run = playbook.run(plays)
    assert run.code == 0, run.failures or run.stderr
    assert run.stats["changed"] > 0
    live = config_dir / "live" / "site"
    certificate = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["site.example.test", "www.example.test"]
    assert "Pebble" in certificate.issuer.rfc4514_string()
    assert (config_dir / "live" / "api" / "cert.pem").exists()

    run = playbook.run(plays)
    assert run.code == 0, run.failures or run.stderr
    assert run.stats["changed"] == 0, "second run changed something"

    port = free_port()
    served = [str(live / "fullchain.pem"), str(live / "privkey.pem")]
    server = subprocess.Popen([sys.executable, str(HERE / "tls_server.py"), str(port), *served, str(pidfile), str(reloads)])
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text())
        assert wait_for(lambda: _serves(port))
        first = served_serial(port)
        assert first == file_serial(live / "cert.pem")

        # what the timer or cron entry runs, forced
        renew = [
            "certbot",
            "renew",
            "--force-renewal",
            "--no-random-sleep-on-renew",
            "--non-interactive",
            "--config-dir",
            str(config_dir),
            "--work-dir",
            str(tmp_path / "work"),
            "--logs-dir",
            str(tmp_path / "logs"),
        ]
        proc = subprocess.run(renew, env={**os.environ, "REQUESTS_CA_BUNDLE": pebble.ca_bundle}, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr

        renewed = file_serial(live / "cert.pem")
        assert renewed != first
        assert wait_for(lambda: reloads.exists() and reloads.read_text().count("reloaded") == 1)
        assert served_serial(port) == renewed
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def _serves(port):
    try:
        served_serial(port)
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "empty", "domains": [], "method": "standalone"}, "certbot certificate empty: domains: must list at least one domain"),
        ({"name": "nowebroot", "domains": ["a.example.test"]}, "certbot certificate nowebroot: webroot_path: is required for the webroot method"),
    ],
)
def test_bad_certificate_fails_naming_entry_and_field_and_changes_nothing(pebble, playbook, tmp_path, entry, message):
    good = {"name": "good", "domains": ["good.example.test"], "method": "standalone", "http01_port": free_port()}
    run = playbook.run(certbot_play(pebble, tmp_path, [good, entry]))
    assert run.code != 0
    assert any(message in failure for failure in run.failures), run.failures
    assert not (tmp_path / "letsencrypt").exists()
