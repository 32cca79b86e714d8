"""The runtime role writes caretaker.yml only after the engine has checked it.

The role's settings step (roles/runtime/tasks/settings.yml) runs here on this machine, with
the `caretaker` command pointed at a temporary host; the whole role is proven in
molecule/runtime. Every route type the notifier accepts must pass, so the role never
refuses what the engine would deliver to.
"""

import json

import pytest
from caretaker.alerting.notify import ROUTE_SPECS

# One valid route of each type the notifier knows.
ROUTES = {
    "hook": {"type": "webhook", "url": "https://hooks.example.com/caretaker", "headers": {"X-Token": "s3cret-token"}},
    "chat": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X", "channel": "#ops"},
    "pager": {"type": "pagerduty", "routing_key": "R0UT1NGKEY0123456789", "timeout": "30s"},
    "mail": {"type": "email", "host": "smtp.example.com", "sender": "caretaker@example.com", "to": ["ops@example.com"]},
}


@pytest.fixture
def settings_play(caretaker_host, caretaker_command):
    command = caretaker_command

    def play(routes, defaults):
        variables = {"runtime_command": str(command), "runtime_etc_dir": str(caretaker_host.etc),
                     "runtime_state_dir": str(caretaker_host.state), "runtime_log_dir": str(caretaker_host.logs),
                     "runtime_alert_routes": routes, "runtime_default_routes": defaults}
        return [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"ansible.builtin.include_role": {"name": "caretaker.ops.runtime", "tasks_from": "settings"}, "vars": variables}]}]

    return play


def test_each_route_type_the_notifier_accepts_is_accepted(settings_play, playbook, caretaker_host):
    assert {route["type"] for route in ROUTES.values()} == set(ROUTE_SPECS)
    run = playbook.run(settings_play(ROUTES, sorted(ROUTES)))
    assert run.code == 0, run.failures
    written = json.loads("\n".join(line for line in (caretaker_host.etc / "caretaker.yml").read_text().splitlines()
                                   if not line.startswith("#")))
    assert written["alert_routes"] == ROUTES
    assert "s3cret-token" not in run.stdout
    assert caretaker_host.cli("validate", "--settings", str(caretaker_host.etc / "caretaker.yml")).returncode == 0


def test_a_bad_route_fails_naming_the_field_and_keeps_the_old_settings(settings_play, playbook, caretaker_host):
    before = (caretaker_host.etc / "caretaker.yml").read_text()
    run = playbook.run(settings_play({"pager": {"type": "pagerduty"}}, ["pager"]))
    assert run.code != 0
    assert "alert_routes.pager.routing_key: is required" in json.dumps(run.results)
    assert (caretaker_host.etc / "caretaker.yml").read_text() == before


@pytest.mark.parametrize(
    ("routes", "defaults", "expected"),
    [
        ({"pager": {"type": "pagerduty", "url": "https://events.example.com"}}, [], "alert_routes.pager: unsupported option(s) url"),
        ({"hook": {"url": "hooks.example.com"}}, [], "alert_routes.hook.url: must be an http:// or https:// URL"),
        ({"hook": {"type": "webhook", "url": "https://h.example.com", "max_age": "2W"}}, [], "alert_routes.hook.max_age: "),
        ({"mail": {"type": "email", "host": "smtp", "sender": "a@b", "to": ["c@d"], "rate_limit": 0}}, [],
         "alert_routes.mail.rate_limit: must be at least 1"),
        ({"sms": {"type": "sms", "url": "https://sms.example.com"}}, [], "alert_routes.sms.type: must be one of"),
        ({"hook": {"type": "webhook", "url": "https://h.example.com"}}, ["hook", "pager"], "default_routes[1]: alert route 'pager'"),
    ],
)
def test_validate_settings_names_the_bad_field(tmp_path, caretaker_host, routes, defaults, expected):
    """What the role's check runs: `caretaker validate --settings FILE`, exit 2 naming file and field."""
    staged = tmp_path / "staged.yml"
    staged.write_text(json.dumps({"state_dir": str(caretaker_host.state), "alert_routes": routes, "default_routes": defaults}))
    proc = caretaker_host.cli("validate", "--settings", str(staged))
    assert proc.returncode == 2
    assert f"{staged}: {expected}" in proc.stderr
    assert not caretaker_host.state.exists()
