"""The cleanup role's checks, run on this machine before it would change anything.

What it installs and schedules (through caretaker.ops.jobs, in /etc/cron.d or systemd) is
proven in the molecule scenario molecule/cleanup, inside containers.
"""

import os

import pytest
from fixtures.ansible_run import role_play


def converge(tmp_path, playbook, caretaker_host, caretaker_command, entries):
    variables = {"runtime_command": str(caretaker_command), "runtime_etc_dir": str(caretaker_host.etc),
                 "cleanup_config": entries}
    return playbook.run(role_play("cleanup", variables))


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"name": "everything", "paths": ["/"], "age": "30d"},
         "job cleanup-everything: args.paths[0]: refusing to clean the system directory /"),
        ({"name": "etc", "paths": ["/var/tmp/x", "/etc/"], "age": "30d"},
         "job cleanup-etc: args.paths[1]: refusing to clean the system directory /etc"),
        ({"name": "forever", "paths": ["/var/tmp/x"]},
         "job cleanup-forever: args.age: give at least one of age, min_free or max_size"),
        ({"name": "nowhere", "age": "1d"}, "job cleanup-nowhere: args.paths: "),
        ({"name": "Bad Name", "paths": ["/var/tmp/x"], "age": "1d"}, "cleanup_config entry \"Bad Name\": field name"),
    ],
)
def test_bad_entry_fails_naming_entry_and_field_and_changes_nothing(tmp_path, playbook, caretaker_host, caretaker_command,
                                                                    bad, expected):
    entries = [{"name": "fine", "paths": ["/var/tmp/fine"], "age": "1d"}, bad]
    before = sorted(os.listdir("/etc/cron.d"))
    run = converge(tmp_path, playbook, caretaker_host, caretaker_command, entries)
    assert run.code != 0
    assert expected in " ".join(run.failures)
    assert os.listdir(caretaker_host.etc / "jobs") == []
    assert sorted(os.listdir("/etc/cron.d")) == before
