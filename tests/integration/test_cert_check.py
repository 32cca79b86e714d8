"""cert_check against certificates made here: lifetimes, names, chains, real TLS servers and SMTP STARTTLS."""

import pytest
from caretaker.checks import cert_check
from caretaker.foundation.config import Settings
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.tasks import Context


def check(**args):
    return cert_check.CERT_CHECK.run(cert_check.CERT_CHECK.validate(args), Context(settings=Settings()))


def found(outcome):
    return {finding["name"]: finding for finding in outcome["findings"]}


@pytest.fixture
def ca(pki):
    root = pki.root()
    return pki.intermediate(root), pki.pem("roots.pem", root.cert)


def test_healthy_file_and_endpoint(pki, ca):
    inter, roots = ca
    cert, key = pki.leaf(inter, "www.example.test", start=-10, lifetime=365)
    path = pki.pem("www.pem", cert, inter.cert)
    port = pki.serve([cert, inter.cert], key)
    outcome = check(files=[path], endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "www.example.test", "name": "www"}],
                    ca_file=roots)
    result = found(outcome)
    assert outcome["status"] == "ok", outcome["summary"]
    assert result[f"cert:{path}"]["value"] == pytest.approx(355, abs=0.1)
    assert result["cert:www"]["details"]["dns_names"] == ["www.example.test"]
    assert result["chain:www"]["details"]["verified"] == ["CN=www.example.test", "CN=Test Intermediate", "CN=Test Root"]


@pytest.mark.parametrize(("days_left", "status", "stage"), [(40, "ok", None), (25, "warning", "30d"), (12, "warning", "14d"), (5, "critical", "7d")])
def test_staged_expiry_of_long_lived_certificates(pki, ca, days_left, status, stage):
    inter, roots = ca
    cert = pki.leaf(inter, "app.example.test", start=days_left - 365, lifetime=365)[0]
    path = pki.pem("app.pem", cert, inter.cert)
    leaf = found(check(files=[path], ca_file=roots))[f"cert:{path}"]
    assert (leaf["status"], leaf["stage"]) == (status, stage)


def test_short_lived_certificate_renewal_overdue(pki, ca):
    inter, roots = ca
    fresh = pki.leaf(inter, "a.example.test", start=-20, lifetime=45)[0]  # due after 30 days + 2 grace
    stale = pki.leaf(inter, "b.example.test", start=-33, lifetime=45)[0]  # 12 days left: no 30/14 stage for short-lived
    result = found(check(files=[pki.pem("fresh.pem", fresh, inter.cert), pki.pem("stale.pem", stale, inter.cert)], ca_file=roots))
    fresh_finding = next(value for key, value in result.items() if key.startswith("cert:") and key.endswith("fresh.pem"))
    stale_finding = next(value for key, value in result.items() if key.startswith("cert:") and key.endswith("stale.pem"))
    assert fresh_finding["status"] == "ok"
    assert "renewal due by" in fresh_finding["message"]
    assert (stale_finding["status"], stale_finding["stage"]) == ("warning", "overdue")
    assert "renewal overdue" in stale_finding["message"]


def test_expired_and_not_yet_valid(pki, ca):
    inter, roots = ca
    expired = pki.leaf(inter, "old.example.test", start=-400, lifetime=365)[0]
    future = pki.leaf(inter, "new.example.test", start=3, lifetime=365)[0]
    outcome = check(files=[pki.pem("expired.pem", expired, inter.cert), pki.pem("future.pem", future, inter.cert)], ca_file=roots)
    leaves = {key.rsplit("/", 1)[-1]: value for key, value in found(outcome).items() if key.startswith("cert:")}
    assert (leaves["expired.pem"]["status"], leaves["expired.pem"]["stage"]) == ("critical", "expired")
    assert (leaves["future.pem"]["status"], leaves["future.pem"]["stage"]) == ("critical", "not_yet_valid")
    assert outcome["exit_code"] == 2


def test_wrong_hostname_on_the_wire(pki, ca):
    inter, roots = ca
    cert, key = pki.leaf(inter, "other.example.test")
    port = pki.serve([cert, inter.cert], key)
    result = found(check(endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "shop.example.test", "name": "shop"}], ca_file=roots))
    assert result["cert:shop"]["status"] == "critical"
    assert "does not match shop.example.test" in result["cert:shop"]["message"]
    assert result["chain:shop"]["status"] == "critical"


def test_wildcard_and_ip_names(pki, ca):
    inter, roots = ca
    cert, key = pki.leaf(inter, "*.example.test", "127.0.0.1")
    port = pki.serve([cert, inter.cert], key)
    result = found(check(endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "api.example.test", "name": "api"},
                                    {"host": "127.0.0.1", "port": port, "name": "ip"},
                                    {"host": "127.0.0.1", "port": port, "server_name": "a.b.example.test", "name": "deep"}], ca_file=roots))
    assert result["cert:api"]["status"] == "ok"
    assert result["cert:ip"]["status"] == "ok"
    assert result["cert:deep"]["status"] == "critical"


def test_missing_intermediate_fails_the_chain_not_the_leaf(pki, ca):
    inter, roots = ca
    cert, key = pki.leaf(inter, "www.example.test")
    port = pki.serve([cert], key)
    result = found(check(endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "www.example.test", "name": "www"}], ca_file=roots))
    assert result["cert:www"]["status"] == "ok"
    assert result["chain:www"]["status"] == "critical"
    assert "chain does not verify" in result["chain:www"]["message"]


def test_expired_cross_signed_root_sent_by_the_server_raises_no_alarm(pki):
    """Like Let's Encrypt's ISRG Root X1 cross-signed by the expired DST Root CA X3."""
    old_root = pki.root("Old Root", start=-3650, lifetime=3600)  # expired 50 days ago
    new_root = pki.root("New Root")
    cross = pki.intermediate(old_root, name="New Root", start=-1000, lifetime=900, key=new_root.key)  # expired cross-sign
    inter = pki.intermediate(new_root)
    cert, key = pki.leaf(inter, "www.example.test")
    roots = pki.pem("both-roots.pem", old_root.cert, new_root.cert)
    port = pki.serve([cert, inter.cert, cross.cert], key)
    result = found(check(endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "www.example.test", "name": "www"}], ca_file=roots))
    assert result["chain:www"]["status"] == "ok", result["chain:www"]["message"]
    assert result["chain:www"]["details"]["verified"][-1] == "CN=New Root"
    assert result["cert:www"]["status"] == "ok"
    # and when the only trusted root is the expired one, the chain is reported, the leaf is not blamed
    result = found(check(endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "www.example.test", "name": "www"}],
                         ca_file=pki.pem("old-root.pem", old_root.cert)))
    assert result["chain:www"]["status"] == "critical"
    assert result["cert:www"]["status"] == "ok"


def test_expiring_intermediate_is_reported_on_the_chain(pki):
    root = pki.root()
    inter = pki.intermediate(root, start=-300, lifetime=310)  # 10 days left
    cert = pki.leaf(inter, "www.example.test", start=-1, lifetime=365)[0]
    path = pki.pem("www.pem", cert, inter.cert)
    result = found(check(files=[path], ca_file=pki.pem("root.pem", root.cert)))
    assert (result[f"chain:{path}"]["status"], result[f"chain:{path}"]["stage"]) == ("warning", "14d")
    assert result[f"chain:{path}"]["details"]["expires_first"] == "CN=Test Intermediate"


def test_renewed_on_disk_but_not_served(pki, ca):
    inter, roots = ca
    old, key = pki.leaf(inter, "www.example.test", start=-60, lifetime=90)
    port = pki.serve([old, inter.cert], key)
    served_path = pki.pem("live.pem", old, inter.cert)
    endpoint = {"host": "127.0.0.1", "port": port, "server_name": "www.example.test", "name": "www", "compare_file": served_path}
    assert found(check(endpoints=[endpoint], ca_file=roots))["served:www"]["status"] == "ok"
    renewed = pki.leaf(inter, "www.example.test", start=-1, lifetime=90)[0]
    pki.pem("live.pem", renewed, inter.cert)
    stale = found(check(endpoints=[endpoint], ca_file=roots))["served:www"]
    assert (stale["status"], stale["stage"]) == ("critical", "stale")
    assert "renewed" in stale["message"] and "reload" in stale["message"]


def test_smtp_starttls_endpoint(pki, ca):
    from aiosmtpd.controller import Controller
    from fixtures.ports import free_port

    inter, roots = ca
    cert, key = pki.leaf(inter, "mail.example.test", start=-80, lifetime=90)
    port = free_port()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=pki.server_context([cert, inter.cert], key))
    controller.start()
    try:
        result = found(check(endpoints=[{"host": "127.0.0.1", "port": port, "server_name": "mail.example.test", "starttls": "smtp",
                                         "name": "mx"}], ca_file=roots))
    finally:
        controller.stop()
    assert result["chain:mx"]["status"] == "ok"
    assert (result["cert:mx"]["status"], result["cert:mx"]["stage"]) == ("warning", "overdue")


def test_bad_input_and_cannot_run(pki, tmp_path):
    not_pem = tmp_path / "cert.der"
    not_pem.write_bytes(b"\x30\x82garbage")
    result = check(files=[str(not_pem), str(tmp_path / "missing.pem")], ca_file=pki.pem("r.pem", pki.root().cert))
    messages = [finding["message"] for finding in result["findings"]]
    assert result["status"] == "unknown"
    assert "files[0]" in messages[0] and "is not a PEM certificate file" in messages[0]
    assert "files[1]" in messages[1] and "No such file" in messages[1]
    with pytest.raises(ConfigError) as error:
        check(files=["/etc/hostname"], ca_file=str(not_pem))
    assert error.value.field == "ca_file"
    with pytest.raises(ConfigError) as error:
        check()
    assert error.value.field == "files"
    unreachable = check(endpoints=[{"host": "127.0.0.1", "port": 1}], ca_file=pki.pem("r2.pem", pki.root().cert))
    assert unreachable["status"] == "unknown"
    assert "cannot fetch" in unreachable["findings"][0]["message"]


def test_staged_alerts_as_a_job(caretaker_host, pki, ca, inbox):
    inter, roots = ca
    caretaker_host.write_settings(alert_routes={"hook": {"type": "webhook", "url": inbox.url("hook")}}, default_routes=["hook"])
    path = pki.pem("site.pem", pki.leaf(inter, "site.example.test", start=-340, lifetime=365)[0], inter.cert)
    caretaker_host.add_job("certs", kind="cert_check", alert={"after": 1}, args={"files": [path], "ca_file": roots})
    caretaker_host.run("certs", check=0)
    caretaker_host.run("certs", check=0)
    pki.pem("site.pem", pki.leaf(inter, "site.example.test", start=-355, lifetime=365)[0], inter.cert)
    caretaker_host.run("certs", check=0)
    pki.pem("site.pem", pki.leaf(inter, "site.example.test", start=-1, lifetime=365)[0], inter.cert)
    caretaker_host.run("certs", check=0)
    sent = [(a["action"], a["severity"], a["check"]) for a in inbox.payloads("hook")]
    assert sent == [("trigger", "warning", f"certs:cert:{path}"), ("trigger", "warning", f"certs:cert:{path}"),
                    ("resolve", "ok", f"certs:cert:{path}")]
    first, second = inbox.payloads("hook")[:2]
    assert first["summary"].startswith("expires in 25.0 days")
    assert second["summary"].startswith("expires in 10.0 days")
    assert second["details"]["dns_names"] == ["site.example.test"]
