"""Parsing apt's simulation output: lines as apt 2.6 prints them."""

from caretaker.checks.updates_info import is_security_origin, parse_simulation

SIMULATION = """\
Reading package lists...
Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst linux-image-6.1.0-40-amd64 (6.1.153-1 Debian:12.15/oldstable [amd64])
Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
"""


def test_installed_upgrades_are_parsed_and_new_packages_skipped():
    updates = parse_simulation(SIMULATION)
    assert [update["name"] for update in updates] == ["bash", "libgcrypt20-dev"]
    gcrypt = updates[1]
    assert gcrypt["current"] == "1.10.1-3"
    assert gcrypt["candidate"] == "1.10.1-3+deb12u1"
    assert gcrypt["origins"] == ["Debian:12.15/oldstable", "Debian-Security:12/oldstable-security"]
    assert gcrypt["security"] is True
    assert updates[0]["security"] is False


def test_security_origin_by_label_or_archive():
    assert is_security_origin("Debian-Security:12/stable-security")
    assert is_security_origin("MyMirror:1.0/bookworm-security")
    assert not is_security_origin("Debian:12.15/oldstable")
    assert not is_security_origin("Debian:12.15/bookworm-updates")
