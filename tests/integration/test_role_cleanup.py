"""The cleanup role's checks, run on this machine before it would change anything.

What it installs and schedules (through caretaker.ops.jobs, in /etc/cron.d or systemd) is
proven in the molecule scenario molecule/cleanup, inside containers.
"""

import os
import sys

import pytest
from fixtures.ansible_local import failures, role_play
from fixtures.engine import ENGINE_PARENT


@pytest.fixture
def caretaker_command(caretaker_host, tmp_path):
    """The `caretaker` command as the runtime installs it, pointed at the temporary host."""
    path = tmp_path / "caretaker"
    path.write_text(f'#!/bin/sh\nCARETAKER_ETC="{caretaker_host.etc}" PYTHONPATH="{ENGINE_PARENT}" exec {sys.executable} -m caretaker.cli "$@"\n')
    path.chmod(0o755)
    return path


def converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries):
    variables = {"cleanup_caretaker_command": str(caretaker_command), "cleanup_etc_dir": str(caretaker_host.etc),
                 "cleanup_config": entries}
    return ansible_playbook(role_play(tmp_path, "cleanup", variables))


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"name": "everything", "paths": ["/"], "age": "30d"},
         "cleanup_config entry 'everything': args.paths[0]: refusing to clean the system directory /"),
        ({"name": "etc", "paths": ["/var/tmp/x", "/etc/"], "age": "30d"},
         "cleanup_config entry 'etc': args.paths[1]: refusing to clean the system directory /etc"),
        ({"name": "forever", "paths": ["/var/tmp/x"]},
         "cleanup_config entry 'forever': args.age: give at least one of age, min_free or max_size"),
        ({"name": "nowhere", "age": "1d"}, "cleanup_config entry 'nowhere': args.paths: is required"),
    ],
)
def test_bad_entry_fails_naming_entry_and_field_and_changes_nothing(tmp_path, ansible_playbook, caretaker_host, caretaker_command,
                                                                    bad, expected):
    entries = [{"name": "fine", "paths": ["/var/tmp/fine"], "age": "1d"}, bad]
    before = sorted(os.listdir("/etc/cron.d"))
    code, output = converge(tmp_path, ansible_playbook, caretaker_host, caretaker_command, entries)
    assert code != 0
    assert expected in " ".join(failures(output))
    assert os.listdir(caretaker_host.etc / "jobs") == []
    assert sorted(os.listdir("/etc/cron.d")) == before
