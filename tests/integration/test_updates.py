"""updates_info and unattended_upgrade against real apt and unattended-upgrade, in a
package root of their own (tests/fixtures/apt_repo.py)."""

import fcntl
import os

import pytest
from caretaker.checks.updates_info import UPDATES_INFO
from caretaker.foundation.tasks import Context


@pytest.fixture
def world(apt_world):
    apt_world.add_repository("security", label="Debian-Security", suite="bookworm-security", packages={"demo-openssl": "1.1"})
    apt_world.add_repository("main", label="Debian", suite="bookworm", packages={"demo-tool": "2.0", "demo-absent": "1.0"})
    apt_world.mark_installed("demo-openssl", "1.0")
    apt_world.mark_installed("demo-tool", "1.0")
    apt_world.mark_installed("demo-current", "3.0")
    apt_world.apt_get("update")
    return apt_world


def test_pending_updates_are_split_into_security_and_other(world, tmp_path):
    result = UPDATES_INFO.run({"update_cache": False, "reboot_required_file": str(tmp_path / "reboot-required")}, Context())
    by_name = {update["name"]: update for update in result["updates"]}
    assert sorted(by_name) == ["demo-openssl", "demo-tool"]
    assert by_name["demo-openssl"]["current"] == "1.0"
    assert by_name["demo-openssl"]["candidate"] == "1.1"
    assert by_name["demo-openssl"]["security"] is True
    assert by_name["demo-tool"]["security"] is False
    assert (result["pending_count"], result["security_count"]) == (2, 1)
    assert result["changed"] is False
    assert result["reboot_required"] is False


def test_update_cache_sees_a_new_version_published_after_the_last_refresh(world, tmp_path):
    world.add_repository("late", label="Debian", suite="bookworm-updates", packages={"demo-current": "3.1"})
    stale = UPDATES_INFO.run({"update_cache": False, "reboot_required_file": str(tmp_path / "none")}, Context())
    fresh = UPDATES_INFO.run({"update_cache": True, "reboot_required_file": str(tmp_path / "none")}, Context())
    assert "demo-current" not in {update["name"] for update in stale["updates"]}
    assert "demo-current" in {update["name"] for update in fresh["updates"]}


def test_reboot_required_reports_since_when_and_which_packages(world, tmp_path):
    flag = tmp_path / "reboot-required"
    flag.write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.1.0-28-amd64\nlibc6\nlibc6\n")
    os.utime(flag, (1_790_000_000, 1_790_000_000))
    result = UPDATES_INFO.run({"update_cache": False, "reboot_required_file": str(flag)}, Context())
    assert result["reboot_required"] is True
    assert result["reboot_required_since"] == "2026-09-21T14:13:20Z"
    assert result["reboot_required_packages"] == ["libc6", "linux-image-6.1.0-28-amd64"]


def test_updates_info_job_kind_runs_through_the_cli(world, caretaker_host):
    caretaker_host.add_job("updates", kind="updates_info", args={"reboot_required_file": str(caretaker_host.root / "flag")})
    code, report = caretaker_host.run("updates")
    assert code == 0, report
    assert report["result"]["security_count"] == 1


# unattended-upgrade always reads the host's dpkg status (it passes rootdir "/" to apt.Cache),
# so choosing packages is proven in molecule/patching; here only its failure path runs,
# which stops at the lock before it reads anything.
@pytest.mark.skipif(os.geteuid() != 0, reason="unattended-upgrade runs only as root")
def test_unattended_upgrade_held_lock_is_retried_then_alerts(world, caretaker_host, inbox):
    url = inbox.url("webhook")
    caretaker_host.write_settings(alert_routes={"ops": {"type": "webhook", "url": url}}, default_routes=["ops"])
    caretaker_host.add_job("patch", kind="unattended_upgrade", args={"dry_run": True}, retry={"attempts": 2, "backoff": 0}, alert={"after": 1})
    # unattended-upgrade's own lock, held the way another run would hold it (fcntl record lock)
    with open("/var/run/unattended-upgrades.lock", "a+") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, report = caretaker_host.run("patch")
    assert code == 75, report
    assert report["attempts"] == 2
    assert "could not take its lock" in report["error"]
    received = inbox.payloads("webhook")
    assert [alert["action"] for alert in received] == ["trigger"]
    assert received[0]["check"] == "job:patch"


def test_updates_info_module_through_ansible_in_check_mode(world, run_module, tmp_path):
    result = run_module("updates_info", {"reboot_required_file": str(tmp_path / "flag")}, check=True)
    assert result["changed"] is False
    assert [update["name"] for update in result["updates"] if update["security"]] == ["demo-openssl"]
    assert result["pending_count"] == 2
