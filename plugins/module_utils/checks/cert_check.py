"""cert_check: certificates on disk and on the wire, before they expire or go stale.

For each certificate the leaf and the verified chain are separate findings: the leaf's
days left, validity window and host name; the chain's verification and the earliest
expiry of the path that actually verified (so an expired cross-signed root that the
server still sends, but no client needs, raises no alarm).

Long-lived certificates alert in stages (30, 14, 7 days by default; the last stage is
critical). Short-lived ones (ACME, 90 days and shrinking) alert "renewal overdue" once
two thirds of their lifetime plus a grace period have passed: renewal should have run.
An endpoint can name the file it should serve; a different certificate on disk that is
newer means a renewal that the service never picked up.
"""

from __future__ import annotations

import datetime
import ipaddress

from ..foundation.errors import ConfigError
from ..foundation.tasks import Task
from ..foundation.timestamps import iso
from . import check
from .check import Finding, unknown

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

ENDPOINT_OPTIONS = {
    "host": {"type": "str", "required": True},
    "port": {"type": "int", "default": 443},
    "server_name": {"type": "str"},
    "starttls": {"type": "str", "default": "none", "choices": ["none", "smtp"]},
    "name": {"type": "str"},
    "compare_file": {"type": "path"},
}

CERT_SPEC = {
    "files": {"type": "list", "elements": "path", "default": []},
    "endpoints": {"type": "list", "elements": "dict", "default": [], "options": ENDPOINT_OPTIONS},
    "stages": {"type": "list", "elements": "int", "default": [30, 14, 7]},
    "short_lived_days": {"type": "int", "default": 100},
    "grace_days": {"type": "float", "default": 2.0},
    "ca_file": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
    "runbook": {"type": "str"},
}


def _utc_now():
    return datetime.datetime.now(datetime.UTC)


def load_pem(path, field):
    """Certificates in a PEM file, leaf first; ConfigError naming the field if it holds none."""
    from cryptography import x509

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", field=field) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(f"{path} is not a PEM certificate file (no BEGIN CERTIFICATE block)", field=field)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"{path} holds a malformed certificate: {exc}", field=field) from None


def fetch_chain(host, port, server_name, starttls, timeout):
    """The chain a server sends, leaf first, without trusting it (that is judged later)."""
    import socket
    import ssl

    from cryptography import x509

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if starttls == "smtp":
        import smtplib

        client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.starttls(context=context)
            return _peer_chain(client.sock, x509)
        finally:
            client.close()
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sni = server_name if server_name and not _is_ip(server_name) else None
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            return _peer_chain(tls, x509)


def _peer_chain(tls, x509):
    import _ssl

    sslobj = getattr(tls, "_sslobj", None)
    if sslobj is not None and hasattr(sslobj, "get_unverified_chain"):  # public as SSLSocket.get_unverified_chain in 3.13
        return [x509.load_der_x509_certificate(cert.public_bytes(_ssl.ENCODING_DER)) for cert in sslobj.get_unverified_chain()]
    return [x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))]


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def names(cert):
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def hostname_matches(cert, hostname):
    dns, ips = names(cert)
    if _is_ip(hostname):
        return str(ipaddress.ip_address(hostname)) in ips
    hostname = hostname.lower().rstrip(".")
    for pattern in (name.lower().rstrip(".") for name in dns):
        if pattern == hostname:
            return True
        if pattern.startswith("*.") and "." in hostname and hostname.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def fingerprint(cert):
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def describe(cert, now):
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": iso(cert.not_valid_before_utc),
        "not_after": iso(cert.not_valid_after_utc),
        "days_left": round((cert.not_valid_after_utc - now).total_seconds() / 86400, 2),
        "lifetime_days": round((cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400, 2),
        "dns_names": names(cert)[0],
        "sha256": fingerprint(cert),
    }


def trust_store(ca_file):
    from cryptography.x509.verification import Store

    certs = load_pem(ca_file or SYSTEM_CA_BUNDLE, "ca_file")
    return Store(certs)


def verify_chain(leaf, intermediates, store, hostname, now):
    """(verified path leaf-first, None) or (None, reason)."""
    from cryptography.x509 import DNSName, IPAddress
    from cryptography.x509.verification import PolicyBuilder, VerificationError

    if hostname is None:
        dns, ips = names(leaf)
        hostname = (dns or ips or [None])[0]
        if hostname and hostname.startswith("*."):
            hostname = "x" + hostname[1:]
    if hostname is None:
        return None, "the certificate names no host (no subjectAltName)"
    subject = IPAddress(ipaddress.ip_address(hostname)) if _is_ip(hostname) else DNSName(hostname)
    verifier = PolicyBuilder().store(store).time(now).build_server_verifier(subject)
    try:
        return verifier.verify(leaf, intermediates), None
    except VerificationError as exc:
        return None, str(exc)


def grade_leaf(label, cert, hostname, args, now):
    """The leaf's finding: validity window, host name, staged expiry or renewal overdue."""
    info = describe(cert, now)
    days_left = info["days_left"]
    short_lived = info["lifetime_days"] <= args["short_lived_days"]
    stages = sorted(set(args["stages"]))
    base = {"value": days_left, "unit": "d", "details": info}
    if cert.not_valid_before_utc > now:
        return Finding(label, "critical", f"not valid before {info['not_before']}", stage="not_yet_valid", **base)
    if days_left <= 0:
        return Finding(label, "critical", f"expired {-days_left:.1f} days ago ({info['not_after']})", stage="expired", **base)
    if hostname and not hostname_matches(cert, hostname):
        return Finding(label, "critical", f"does not match {hostname} (names: {', '.join(info['dns_names']) or 'none'})", stage="hostname", **base)
    if stages and days_left <= stages[0]:
        return Finding(label, "critical", f"expires in {days_left:.1f} days ({info['not_after']})", stage=f"{stages[0]}d",
                       warning=float(stages[-1]), critical=float(stages[0]), **base)
    if short_lived:
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        due = cert.not_valid_before_utc + lifetime * 2 / 3 + datetime.timedelta(days=args["grace_days"])
        if now > due:
            return Finding(label, "warning", f"renewal overdue since {iso(due)}: {days_left:.1f} of {info['lifetime_days']:.0f} days left",
                           stage="overdue", **base)
        return Finding(label, "ok", f"{days_left:.1f} days left; renewal due by {iso(due)}", **base)
    reached = [stage for stage in stages if days_left <= stage]
    if reached:
        return Finding(label, "warning", f"expires in {days_left:.1f} days ({info['not_after']})", stage=f"{min(reached)}d",
                       warning=float(stages[-1]), critical=float(stages[0]), **base)
    return Finding(label, "ok", f"{days_left:.1f} days left", **base)


def grade_chain(label, chain, store, hostname, args, now):
    """The verified chain's finding: does it verify, and when does its first link above the leaf expire?"""
    path, reason = verify_chain(chain[0], chain[1:], store, hostname, now)
    if path is None:
        return Finding(label, "critical", f"chain does not verify: {reason}", details={"sent": [c.subject.rfc4514_string() for c in chain]})
    above_leaf = path[1:]
    details = {"verified": [c.subject.rfc4514_string() for c in path]}
    if not above_leaf:
        return Finding(label, "ok", "leaf is itself trusted", details=details)
    first = min(above_leaf, key=lambda cert: cert.not_valid_after_utc)
    days_left = round((first.not_valid_after_utc - now).total_seconds() / 86400, 2)
    details["expires_first"] = first.subject.rfc4514_string()
    stages = sorted(set(args["stages"]))
    status, stage = "ok", None
    if stages and days_left <= stages[0]:
        status, stage = "critical", f"{stages[0]}d"
    elif stages and days_left <= stages[-1]:
        status, stage = "warning", f"{min(s for s in stages if days_left <= s)}d"
    return Finding(label, status, f"verified, {len(path)} certificates; first to expire: {details['expires_first']} in {days_left:.1f} days",
                   value=days_left, unit="d", details=details, stage=stage)


def check_file(index, path, store, args, now):
    field = f"files[{index}]"
    try:
        chain = load_pem(path, field)
    except ConfigError as exc:
        return [unknown(f"cert:{path}", exc.message)]
    return [grade_leaf(f"cert:{path}", chain[0], None, args, now), grade_chain(f"chain:{path}", chain, store, None, args, now)]


def check_endpoint(index, endpoint, store, args, now):
    field = f"endpoints[{index}]"
    hostname = endpoint["server_name"] or endpoint["host"]
    label = endpoint["name"] or f"{hostname}:{endpoint['port']}"
    try:
        chain = fetch_chain(endpoint["host"], endpoint["port"], hostname, endpoint["starttls"], args["timeout"])
    except Exception as exc:  # noqa: BLE001 - whatever the network says, the check could not look: UNKNOWN
        return [unknown(f"cert:{label}", f"cannot fetch the certificate from {endpoint['host']}:{endpoint['port']}: {exc}")]
    findings = [grade_leaf(f"cert:{label}", chain[0], hostname, args, now), grade_chain(f"chain:{label}", chain, store, hostname, args, now)]
    if endpoint["compare_file"]:
        findings.append(compare_served(f"served:{label}", chain[0], endpoint["compare_file"], f"{field}.compare_file"))
    return findings


def compare_served(label, served, path, field):
    try:
        on_disk = load_pem(path, field)[0]
    except ConfigError as exc:
        return unknown(label, exc.message)
    details = {"served_sha256": fingerprint(served), "disk_sha256": fingerprint(on_disk), "file": path}
    if details["served_sha256"] == details["disk_sha256"]:
        return Finding(label, "ok", f"serves the certificate in {path}", details=details)
    if on_disk.not_valid_before_utc > served.not_valid_before_utc:
        return Finding(label, "critical", f"{path} was renewed ({iso(on_disk.not_valid_before_utc)}) but the service still serves "
                       f"the old certificate (until {iso(served.not_valid_after_utc)}): reload it", details=details, stage="stale")
    return Finding(label, "warning", f"serves a different certificate than {path}", details=details, stage="different")


def _cert_check(args, ctx):
    if not args["files"] and not args["endpoints"]:
        raise ConfigError("name at least one certificate file or endpoint", field="files")
    if any(stage <= 0 for stage in args["stages"]):
        raise ConfigError("stages are positive numbers of days", field="stages")
    store = trust_store(args["ca_file"])
    now = _utc_now()
    findings = []
    for index, path in enumerate(args["files"]):
        findings.extend(check_file(index, path, store, args, now))
    for index, endpoint in enumerate(args["endpoints"]):
        findings.extend(check_endpoint(index, endpoint, store, args, now))
    return check.finish(ctx, "cert_check", findings, args["runbook"])


CERT_CHECK = Task(name="cert_check", argument_spec=CERT_SPEC, run=_cert_check)
