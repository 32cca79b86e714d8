"""The playbooks caretaker.ops.deploy and caretaker.ops.rollback as a user runs them, on
localhost standing in for two app hosts (each its own app root, ledger and gunicorn), with
HAProxy, PostgreSQL, Alembic and the backup gate real. molecule/deploy runs the same on
containers."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from caretaker.deploy.balancer import server_stat
from caretaker.deploy.info import DEPLOY_INFO
from deploy_fleet import Fleet, HAProxy, build_release, run

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(tmp_path, postgres):
    name = postgres.create_database()
    url = f"postgresql://{postgres.user}:{postgres.password}@{postgres.host}:{postgres.port}/{name}"
    fleet = Fleet(tmp_path, url)
    fleet.name = name
    fleet.postgres = postgres
    yield fleet
    fleet.stop()
    postgres.drop_database(name)


def inventory(fleet):
    """app1 and app2 on localhost: a python wrapper gives each its own caretaker ledger, a
    restart script its own gunicorn."""
    hosts = {}
    for host in fleet.hosts:
        wrapper = fleet.root / f"{host.name}-python"
        wrapper.write_text(f"#!/bin/sh\nCARETAKER_ETC={host.caretaker.etc} exec /usr/bin/python3 \"$@\"\n")
        wrapper.chmod(0o755)
        restart = fleet.root / f"{host.name}-restart"
        pidfile = fleet.root / f"{host.name}.pid"
        restart.write_text(
            "#!/bin/sh\n"
            f"[ -f {pidfile} ] && kill $(cat {pidfile}) && while kill -0 $(cat {pidfile}) 2>/dev/null; do sleep 0.1; done\n"
            f"DATABASE_URL='{fleet.database_url}' exec /usr/bin/gunicorn --daemon --pid {pidfile} --chdir {host.app_root}/current"
            f" --bind 127.0.0.1:{host.port} --workers 2 app:application\n"
        )
        restart.chmod(0o755)
        host.pidfile = pidfile
        hosts[host.name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": str(wrapper),
            "deploy_root": str(host.app_root),
            "deploy_restart_command": [str(restart)],
            "deploy_health_url": f"http://127.0.0.1:{host.port}/health",
        }
    common = {
        "deploy_app": "sample",
        "deploy_strip_components": 1,
        "deploy_shared": ["config"],
        "deploy_restart_method": "command",
        "deploy_health_expect": '"release": "{{ deploy_release }}"',
        "deploy_health_interval": 0.3,
        "deploy_health_budget": 20,
        "deploy_balancer": "haproxy",
        "deploy_haproxy_host": "localhost",
        "deploy_haproxy_socket": fleet.haproxy.socket,
        "deploy_haproxy_backend": "app",
        "deploy_pending_command": ["/usr/bin/python3", "bin/pending"],
        "deploy_version_command": ["/usr/bin/python3", "bin/version"],
        "deploy_migrate_command": ["/usr/bin/python3", "-m", "alembic", "upgrade", "head"],
        "deploy_migrate_env": {"DATABASE_URL": fleet.database_url},
        "deploy_migrate_conninfo": fleet.postgres.conninfo(fleet.name),
        "deploy_backup": {k: v for k, v in fleet.postgres.args(fleet.name, directory=str(fleet.root / "backups")).items() if k != "pg_password"},
        "deploy_backup_password": fleet.postgres.password,
        "deploy_alert_routes": ["deploys"],
    }
    path = fleet.root / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"caretaker_app": {"hosts": hosts, "vars": common}}}}))
    return path


def playbook(fleet, name, **extra):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build" / "collections"), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", "ANSIBLE_FORCE_COLOR": "false",
           "ANSIBLE_SHOW_CUSTOM_STATS": "true"}
    link = ROOT / ".build" / "collections" / "ansible_collections" / "caretaker" / "ops"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(ROOT, link)
    argv = [str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i", str(fleet.inventory),
            str(ROOT / "playbooks" / f"{name}.yml"), "-e", json.dumps(extra)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)


def summary(done):
    """The deploy's summary for the controller (set_stats: the run's custom stats, AWX's artifacts)."""
    stats = done.stdout[done.stdout.index("CUSTOM STATS"):]
    return json.loads(stats[stats.index("{"):stats.rindex("}") + 1])["caretaker_deploy"]


def release_vars(fleet, release):
    artifact, digest = build_release(fleet.root, release)
    return {"deploy_release": release, "deploy_artifact": str(artifact), "deploy_sha256": digest}


def test_deploy_a_failed_canary_and_rollback_through_the_playbooks(fleet, inbox):
    fleet.haproxy = HAProxy(fleet.root, fleet.hosts)
    fleet.inventory = inventory(fleet)
    # Deploys alert on their own route; the hosts' default route must hear nothing of them.
    for host in fleet.hosts:
        host.caretaker.write_settings(alert_routes={"deploys": {"type": "webhook", "url": inbox.url("deploys")},
                                                    "ops": {"type": "webhook", "url": inbox.url("ops")}},
                                      default_routes=["ops"])
    try:
        done = playbook(fleet, "deploy", **release_vars(fleet, "v1"))
        assert done.returncode == 0, done.stdout[-3000:]
        done = playbook(fleet, "deploy", **release_vars(fleet, "v2"))
        assert done.returncode == 0, done.stdout[-3000:]
        assert [host.current() for host in fleet.hosts] == ["v2", "v2"]
        assert [host.served_release() for host in fleet.hosts] == ["v2", "v2"]
        expected = {"app": "sample", "release": "v2", "deploy_id": None, "outcome": "ok", "hosts": ["app1", "app2"]}
        assert summary(done) | {"deploy_id": None} == expected
        with fleet.postgres.connect(fleet.name) as conn:
            assert conn.execute("SELECT count(*) FROM migration_runs").fetchone()[0] == 1

        again = playbook(fleet, "deploy", **release_vars(fleet, "v2"))
        assert again.returncode == 0, again.stdout[-3000:]
        recap = again.stdout[again.stdout.index("PLAY RECAP"):]
        assert "changed=0" in recap and "changed=1" not in recap, recap

        bad = playbook(fleet, "deploy", **release_vars(fleet, "v3"), deploy_health_budget=3)
        assert bad.returncode != 0
        assert "did not answer healthy" in bad.stdout
        assert summary(bad)["outcome"] == "rolled_back" and summary(bad)["failed_host"] == "app1"
        assert [host.current() for host in fleet.hosts] == ["v2", "v2"]
        assert [host.served_release() for host in fleet.hosts] == ["v2", "v2"]
        assert all(server_stat(fleet.haproxy.socket, "app", host.name)["status"].startswith("UP") for host in fleet.hosts)

        checksum = playbook(fleet, "deploy", **{**release_vars(fleet, "v3"), "deploy_sha256": "0" * 64})
        assert checksum.returncode != 0 and "sha256: " in checksum.stdout
        method = playbook(fleet, "deploy", **release_vars(fleet, "v3"), deploy_restart_method="reboot")
        assert method.returncode != 0 and "deploy_restart_method" in method.stdout
        assert [host.current() for host in fleet.hosts] == ["v2", "v2"]

        # A health URL that never answers: the canary goes back, and although it cannot
        # answer on the old release either, the deploy still ends and drops its lock.
        silent = playbook(fleet, "deploy", **release_vars(fleet, "v3"), deploy_health_url="http://127.0.0.1:9/health", deploy_health_budget=2)
        output = silent.stdout + silent.stderr
        assert silent.returncode != 0 and "url: http://127.0.0.1:9/health" in output
        assert "back on the previous release but not answering healthy: app1" in output, output[-3000:]
        assert [host.current() for host in fleet.hosts] == ["v2", "v2"]
        assert run(DEPLOY_INFO, {"app": "sample", "root": str(fleet.hosts[0].app_root), "history": 0}, fleet.hosts[0])["lock"] is None

        back = playbook(fleet, "rollback")
        assert back.returncode == 0, back.stdout[-3000:]
        assert [host.current() for host in fleet.hosts] == ["v1", "v1"]
        assert [host.served_release() for host in fleet.hosts] == ["v1", "v1"]
        # The failed deploys alerted on the deploys route, and the good end resolved there too.
        actions = [payload["action"] for payload in inbox.payloads("deploys")]
        assert actions[0] == "trigger" and actions[-1] == "resolve", inbox.payloads("deploys")
        assert inbox.payloads("ops") == []
    finally:
        for host in fleet.hosts:
            if getattr(host, "pidfile", None) and host.pidfile.exists():
                subprocess.run(["kill", host.pidfile.read_text().strip()], check=False)
