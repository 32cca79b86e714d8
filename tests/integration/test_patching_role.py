"""The patching role refuses bad settings by field before it touches the host (its first task)."""

import pathlib

import pytest

UU_FILE = pathlib.Path("/etc/apt/apt.conf.d/52caretaker-unattended-upgrades")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"origins": []}, "patching_config: origins: must list at least one origin pattern"),
        ({"reboot_time": "25:00"}, "patching_config: reboot_time: 25:00 is not HH:MM or now"),
        ({"blocklist": ['bad"quote']}, "patching_config: blocklist: entries must not contain a double quote"),
    ],
)
def test_bad_setting_fails_naming_the_field_and_changes_nothing(playbook, config, message):
    before = UU_FILE.read_bytes() if UU_FILE.exists() else None
    plays = [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "caretaker.ops.patching", "patching_host_config": config}]}]
    run = playbook.run(plays)
    assert run.code != 0
    assert any(message in failure for failure in run.failures), run.failures
    assert (UU_FILE.read_bytes() if UU_FILE.exists() else None) == before
