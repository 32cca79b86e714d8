"""Deploys on real parts: the sample app on Debian's gunicorn behind HAProxy, Alembic
migrations against a real PostgreSQL, pg_backup's backup gate, the journal in the ledger."""

import threading
import time

import pytest
from caretaker.deploy.health import DEPLOY_HEALTH
from caretaker.deploy.info import DEPLOY_INFO
from caretaker.deploy.journal import LockHeld
from caretaker.deploy.lock import DEPLOY_LOCK
from caretaker.deploy.migrate import DEPLOY_MIGRATE
from caretaker.deploy.releases import DEPLOY_RELEASE
from caretaker.foundation.errors import CaretakerError, ConfigError
from caretaker.report import record, render
from deploy_fleet import Client, Fleet, HAProxy, run
from fixtures.ports import free_port


@pytest.fixture
def database(postgres):
    name = postgres.create_database()
    url = f"postgresql://{postgres.user}:{postgres.password}@{postgres.host}:{postgres.port}/{name}"
    yield name, url, postgres.conninfo(name)
    postgres.drop_database(name)


@pytest.fixture
def fleet(tmp_path, database, postgres):
    name, url, conninfo = database
    fleet = Fleet(tmp_path, url)
    fleet.conninfo = conninfo
    fleet.backup = postgres.args(name, directory=str(tmp_path / "backups"))
    yield fleet
    fleet.stop()


def migration_runs(postgres, fleet):
    with postgres.connect(fleet.conninfo.split("dbname=")[1].split()[0]) as conn:
        return conn.execute("SELECT count(*) FROM migration_runs").fetchone()[0]


def test_rolling_deploy_rollback_and_a_failed_canary(fleet, postgres):
    assert fleet.deploy("v1", "d1", fleet.conninfo, fleet.backup) == "ok"
    fleet.haproxy = HAProxy(fleet.root, fleet.hosts)
    assert [host.served_release() for host in fleet.hosts] == ["v1", "v1"]

    # v2 rolls out while a client loops through HAProxy: no request fails
    client = Client(f"http://127.0.0.1:{fleet.haproxy.port}/health")
    client.start()
    assert fleet.deploy("v2", "d2", fleet.conninfo, fleet.backup) == "ok"
    ok, failed = client.finish()
    assert failed == 0, client.errors[:5]
    assert ok > 20
    assert [host.current() for host in fleet.hosts] == ["v2", "v2"]
    assert migration_runs(postgres, fleet) == 1
    lock_host = fleet.hosts[0]
    migration = run(DEPLOY_INFO, {"app": "sample", "root": str(lock_host.app_root)}, lock_host)
    rows = {(row["deploy_id"], row["action"]): row for row in migration["history"]}
    assert rows[("d2", "migrate")]["outcome"] == "ok"
    assert rows[("d2", "migrate")]["schema_before"] == "0001" and rows[("d2", "migrate")]["schema_after"] == "0002"
    assert rows[("d2", "migrate")]["backup_id"]  # the backup the gate took and verified before migrating
    assert migration["current"] == "v2" and migration["previous"] == "v1"

    # a second run of the same deploy changes nothing
    for host in fleet.hosts:
        assert not run(DEPLOY_RELEASE, fleet.release_args(host, "v2", "d2b"), host)["changed"]
    assert not run(DEPLOY_MIGRATE, fleet.migrate_args(lock_host, "v2", "d2b", fleet.conninfo, fleet.backup), lock_host)["changed"]

    # v3 fails its gate on the canary: the canary goes back to v2, nothing else moved, all in the balancer
    with pytest.raises(CaretakerError, match="did not answer healthy"):
        fleet.deploy("v3", "d3", fleet.conninfo, fleet.backup, health_budget=3)
    assert [host.current() for host in fleet.hosts] == ["v2", "v2"]
    assert [host.served_release() for host in fleet.hosts] == ["v2", "v2"]
    from caretaker.deploy.balancer import server_stat

    assert [server_stat(fleet.haproxy.socket, "app", host.name)["status"] for host in fleet.hosts] != ["DRAIN", "DRAIN"]
    assert all(not server_stat(fleet.haproxy.socket, "app", host.name)["status"].startswith(("DRAIN", "MAINT")) for host in fleet.hosts)
    history = run(DEPLOY_INFO, {"app": "sample", "root": str(lock_host.app_root)}, lock_host)["history"]
    summary = {row["action"]: row for row in history if row["deploy_id"] == "d3"}
    assert summary["summary"]["outcome"] == "rolled_back"
    assert summary["deploy"]["outcome"] == "rolled_back"

    # the fleet report: both hosts serve v2; the canary warns that its deploy of v3 was rolled back
    canary, other = fleet_report(fleet)["hosts"]
    assert canary["item"]["status"] == "warning" and canary["item"]["value"] == "v2"
    assert "release v2; the deploy to v3 (d3," in canary["item"]["message"] and canary["item"]["message"].endswith("rolled back")
    assert other["item"]["status"] == "ok" and other["item"]["message"].startswith("release v2 since ")
    assert fleet_report(fleet)["releases"] == {"sample": {"releases": {"v2": ["app1", "app2"]}, "mixed": False}}

    # rollback picks the journal's previous release (v1), not the newest directory
    for host in fleet.hosts:
        result = run(DEPLOY_RELEASE, {"app": "sample", "root": str(host.app_root), "state": "rolled_back", "deploy_id": "r1"}, host)
        assert result["changed"] and result["current"] == "v1"
        run(DEPLOY_RELEASE, {"app": "sample", "root": str(host.app_root), "state": "confirmed", "deploy_id": "r1"}, host)
        if host is fleet.hosts[0]:  # half way: the report names the fleet's two releases
            report = fleet_report(fleet)
            assert report["releases"] == {"sample": {"releases": {"v1": ["app1"], "v2": ["app2"]}, "mixed": True}}
            assert "MIXED release sample: v1 on 1 (app1); v2 on 1 (app2)" in report["text"]
            assert report["hosts"][0]["item"]["status"] == "ok"  # a confirmed rollback ends the warning
    assert [host.current() for host in fleet.hosts] == ["v1", "v1"]
    status = fleet.hosts[1].caretaker.status()
    assert status["deploys"] == [{"app": "sample", "release": "v1", "since": status["deploys"][0]["since"]}]


def fleet_report(fleet):
    """The fleet report of the app hosts, read from their journals: its releases, its text
    summary and, per host, its deploy item."""
    records = {host.name: record.collect(str(host.caretaker.etc), live_updates=False) for host in fleet.hosts}
    report = render.build(records)
    items = {name: next(entry for entry in rec["items"] if entry["area"] == "deploy") for name, rec in records.items()}
    return {"releases": report["releases"], "text": render.text_summary(report),
            "hosts": [{"host": host.name, "item": items[host.name]} for host in fleet.hosts]}


def test_a_failure_after_the_canary_reverts_every_switched_host(fleet):
    fleet.deploy("v1", "d1", fleet.conninfo, fleet.backup)
    # the second host cannot pass (its gate asks a port nobody answers): the canary, already on v2, goes back too
    fleet.hosts[1].health_port = free_port()
    with pytest.raises(CaretakerError, match="url: "):
        fleet.deploy("v2", "d2", fleet.conninfo, fleet.backup, health_budget=2)
    assert [host.current() for host in fleet.hosts] == ["v1", "v1"]
    assert [host.served_release() for host in fleet.hosts] == ["v1", "v1"]


def test_two_migrate_runners_at_once_apply_once(fleet, postgres):
    fleet.deploy("v1", "d1", fleet.conninfo, fleet.backup)
    host = fleet.hosts[0]
    run(DEPLOY_RELEASE, fleet.release_args(host, "v2", "d2", state="prepared"), host)
    results, errors = [], []

    def migrate(deploy_id):
        try:
            results.append(run(DEPLOY_MIGRATE, fleet.migrate_args(host, "v2", deploy_id, fleet.conninfo, fleet.backup), host))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(f"m{index}",)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sorted(result["changed"] for result in results) == [False, True]
    assert migration_runs(postgres, fleet) == 1


def test_a_second_deploy_is_refused_and_an_expired_lock_is_broken_only_on_request(fleet):
    host = fleet.hosts[0]
    base = {"app": "sample", "holder": "alice", "controller": "ci-1", "release": "v2", "ttl": 1}
    run(DEPLOY_LOCK, {**base, "deploy_id": "a"}, host)
    with pytest.raises(LockHeld, match=r"deploy_lock: .*alice from ci-1 .*deploy a, release v2"):
        run(DEPLOY_LOCK, {**base, "deploy_id": "b", "holder": "bob", "ttl": 3600}, host)

    time.sleep(1.2)
    with pytest.raises(LockHeld, match="past its time to live: break it explicitly"):
        run(DEPLOY_LOCK, {**base, "deploy_id": "b"}, host)
    result = run(DEPLOY_LOCK, {**base, "deploy_id": "b", "break_lock": True}, host)
    assert result["broken"]["holder"] == "alice" and "broke the expired deploy lock of alice" in result["warnings"][0]
    assert not run(DEPLOY_LOCK, {**base, "deploy_id": "a", "state": "absent"}, host)["changed"]  # not a's any more
    assert run(DEPLOY_LOCK, {**base, "deploy_id": "b", "state": "absent"}, host)["changed"]


def test_bad_input_stops_before_any_host_switches(fleet, tmp_path):
    fleet.deploy("v1", "d1", fleet.conninfo, fleet.backup)
    host = fleet.hosts[0]
    bad = fleet.release_args(host, "v2", "d2", sha256="0" * 64)
    with pytest.raises(ConfigError, match=r"sha256: .* has sha256 .*, expected 0{64}") as caught:
        fleet.deploy("v2", "d2", fleet.conninfo, fleet.backup, sha256="0" * 64)
    assert caught.value.field == "sha256"
    with pytest.raises(ConfigError) as caught:
        run(DEPLOY_RELEASE, bad, host)
    assert not (host.app_root / "releases" / "v2").exists()
    with pytest.raises(ConfigError) as caught:
        run(DEPLOY_MIGRATE, fleet.migrate_args(host, "v1", "d2", fleet.conninfo, fleet.backup, migrate_command=[]), host)
    assert caught.value.field == "migrate_command"
    with pytest.raises(CaretakerError, match=r"url: http://127.0.0.1:\d+/health did not answer healthy"):
        run(DEPLOY_HEALTH, {"url": f"http://127.0.0.1:{free_port()}/health", "budget": 1, "interval": 0.2}, host)
    # pending migrations without a backup configured: refused, nothing migrated
    run(DEPLOY_RELEASE, fleet.release_args(host, "v2", "d2", state="prepared"), host)
    with pytest.raises(ConfigError) as caught:
        run(DEPLOY_MIGRATE, fleet.migrate_args(host, "v2", "d2", fleet.conninfo, None), host)
    assert caught.value.field == "backup"
    assert [h.current() for h in fleet.hosts] == ["v1", "v1"]
    # the refused deploy left no lock behind
    assert run(DEPLOY_INFO, {"app": "sample", "root": str(host.app_root)}, host)["lock"] is None


def test_a_server_failing_its_checks_is_still_taken_out_of_drain(fleet):
    from caretaker.deploy.balancer import DEPLOY_BALANCER, haproxy

    fleet.deploy("v1", "d1", fleet.conninfo, fleet.backup)
    fleet.haproxy = HAProxy(fleet.root, fleet.hosts)
    host = fleet.hosts[1]
    host.stop()  # HAProxy's checks now see it DOWN, whatever its admin state

    def admin_state():
        lines = haproxy(fleet.haproxy.socket, "show servers state app").splitlines()
        row = next(line.split() for line in lines if f" {host.name} " in f" {line} ")
        return int(row[6])  # srv_admin_state: 0 in service, 8 drained by the runtime API

    args = {"socket": fleet.haproxy.socket, "backend": "app", "server": host.name, "drain_timeout": 2}
    run(DEPLOY_BALANCER, {**args, "state": "drain"}, host)
    assert admin_state() == 8
    run(DEPLOY_BALANCER, {**args, "state": "ready"}, host)
    assert admin_state() == 0
    with pytest.raises(ConfigError, match="has no server app/nobody") as caught:
        run(DEPLOY_BALANCER, {**args, "server": "nobody", "state": "drain"}, host)
    assert caught.value.field == "server"


def test_the_health_gate_asks_again_soon_while_nothing_answers(fleet):
    """A gate with a long interval still passes a process that comes up 0.5 s later, within a
    3 s budget: while nothing answers at all it asks again soon instead of waiting the
    interval (which is kept between answers)."""
    import http.server

    port = free_port()

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    def serve_later():
        time.sleep(0.5)
        server = http.server.HTTPServer(("127.0.0.1", port), Healthy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)

    started = []
    threading.Thread(target=serve_later, daemon=True).start()
    try:
        result = run(DEPLOY_HEALTH, {"url": f"http://127.0.0.1:{port}/health", "consecutive": 1, "interval": 30, "budget": 3},
                     fleet.hosts[0])
    finally:
        for server in started:
            server.shutdown()
    assert result["passed"] == 1 and result["attempts"] > 1
