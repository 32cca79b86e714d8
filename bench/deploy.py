"""Benchmark: a rolling, health-gated deploy against a naive one, side by side in one run.

On a local fleet (tests/integration/deploy_fleet.py): two app hosts running the sample app
on Debian's gunicorn behind HAProxy, a PostgreSQL 15 cluster. Each fleet starts on v1; a
client loops through HAProxy (bounded in count and time) during the deploy of v2:
  naive      switch and restart every host at once, then migrate (what a plain playbook does)
  caretaker  lock, backup gate, migrations once, canary then batch: drain, switch, restart,
             health gate, re-enable
Then v3 (its health check fails) on the caretaker fleet: the time from the failed canary to
every host back on v2.

Goals: 0 failed requests for caretaker; its wall time per batch at most 1.5x the naive
deploy's; back on the old release within 30 s. Exits 1 when a goal is missed.
Usage: python bench/deploy.py
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / ".build" / "engine"))
if not (ROOT / ".build" / "engine" / "caretaker").exists():
    (ROOT / ".build" / "engine").mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT / "plugins" / "module_utils", ROOT / ".build" / "engine" / "caretaker")

from deploy_fleet import Client, Fleet, HAProxy, run  # noqa: E402
from fixtures.postgres import start_cluster, stop_cluster  # noqa: E402

BATCHES = (1, 1)


def new_fleet(cluster, work, name):
    database = cluster.create_database(f"bench_{name}")
    url = f"postgresql://{cluster.user}:{cluster.password}@{cluster.host}:{cluster.port}/{database}"
    fleet = Fleet(work / name, url)
    conninfo = cluster.conninfo(database)
    backup = cluster.args(database, directory=str(work / name / "backups"))
    fleet.deploy("v1", f"{name}-v1", conninfo, backup)
    fleet.haproxy = HAProxy(fleet.root, fleet.hosts)
    time.sleep(1.5)  # HAProxy's first health checks mark both servers up
    return fleet, conninfo, backup


def naive(fleet):
    """Every host switched and restarted at once, then the migration: no lock, no gate."""
    from caretaker.deploy.releases import DEPLOY_RELEASE

    for host in fleet.hosts:
        run(DEPLOY_RELEASE, fleet.release_args(host, "v2", "naive-v2"), host)
    for host in fleet.hosts:
        host.stop()
    for host in fleet.hosts:
        host.start()
    env = {**os.environ, "DATABASE_URL": fleet.database_url}
    subprocess.run(["/usr/bin/python3", "-m", "alembic", "upgrade", "head"], cwd=fleet.hosts[0].app_root / "current", env=env, check=True,
                   capture_output=True)
    deadline = time.monotonic() + 30
    while any(host.served_release() != "v2" for host in fleet.hosts) and time.monotonic() < deadline:
        time.sleep(0.1)


def under_load(fleet, deploy):
    client = Client(f"http://127.0.0.1:{fleet.haproxy.port}/health", max_requests=20000, max_seconds=180)
    client.start()
    started = time.monotonic()
    deploy()
    seconds = time.monotonic() - started
    time.sleep(0.5)
    ok, failed = client.finish()
    return {"seconds": round(seconds, 2), "ok": ok, "failed": failed}


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    cluster = start_cluster(["fsync=off", "synchronous_commit=off"])
    fleets = []
    try:
        ours_fleet, conninfo, backup = new_fleet(cluster, work, "caretaker")
        naive_fleet = new_fleet(cluster, work, "naive")[0]
        fleets = [ours_fleet, naive_fleet]
        ours = under_load(ours_fleet, lambda: ours_fleet.deploy("v2", "caretaker-v2", conninfo, backup, batches=BATCHES))
        plain = under_load(naive_fleet, lambda: naive(naive_fleet))

        reverted = {}
        original_revert = ours_fleet.revert

        def timed_revert(deploy_id):
            reverted["failed_at"] = time.monotonic()
            original_revert(deploy_id)
            reverted["back_at"] = time.monotonic()

        ours_fleet.revert = timed_revert
        try:
            ours_fleet.deploy("v3", "caretaker-v3", conninfo, backup, batches=BATCHES, health_budget=3)
        except Exception as exc:
            reverted["error"] = str(exc)[:200]
        back = [host.current() for host in ours_fleet.hosts]
        back_seconds = round(reverted["back_at"] - reverted["failed_at"], 2) if "back_at" in reverted else float("inf")
    finally:
        for fleet in fleets:
            fleet.stop()
        stop_cluster(cluster)

    per_batch = ours["seconds"] / len(BATCHES)
    ratio = per_batch / plain["seconds"] if plain["seconds"] else float("inf")
    goals = [
        {"goal": "caretaker: 0 failed requests", "met": ours["failed"] == 0},
        {"goal": "caretaker seconds per batch / naive seconds <= 1.5", "met": ratio <= 1.5},
        {"goal": "failed canary to every host on v2 < 30 s", "met": back_seconds < 30 and back == ["v2", "v2"]},
    ]
    print(f"{'deploy of v2':<12} {'seconds':>8} {'requests':>9} {'failed':>7}")
    print(f"{'naive':<12} {plain['seconds']:>8.2f} {plain['ok'] + plain['failed']:>9} {plain['failed']:>7}")
    print(f"{'caretaker':<12} {ours['seconds']:>8.2f} {ours['ok'] + ours['failed']:>9} {ours['failed']:>7}")
    print(f"caretaker per batch ({len(BATCHES)} batches) / naive: {ratio:.2f}x")
    print(f"failed canary (v3) to the fleet back on v2: {back_seconds} s, hosts on {back}")
    for goal in goals:
        print(f"goal {'met' if goal['met'] else 'MISSED'}: {goal['goal']}")
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    (results / "deploy.json").write_text(json.dumps({
        "name": "deploy", "naive": plain, "caretaker": ours, "batches": len(BATCHES), "ratio_per_batch": ratio,
        "rollback_seconds": back_seconds, "goals": goals,
        "environment": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")},
    }, indent=2))
    return 0 if all(goal["met"] for goal in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
