"""pg_purge against the seed's single DELETE, on a 10,000,000-row table with 2,000,000 expired rows.

Two identical tables (index on the time column) in one throwaway PostgreSQL 15 cluster
(fsync on, as in production). First a second connection inserts rows for a while with
nothing else running (its latency is the baseline), then the seed's one
`DELETE ... WHERE created_at < cutoff` runs on table A, then pg_purge with its default
batch settings on table B, each while the second connection keeps inserting into the
table being purged. Printed: total time (goal: pg_purge <= 2x the DELETE), the longest
single transaction (goal: < 1 s), and the inserts' p99 latency against no purge (goal: <= 2x).

Usage: python bench/pg_purge.py [--rows N] [--expired N]   (defaults 10,000,000 / 2,000,000)
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import conftest  # noqa: E402  (links the engine as `caretaker`, as on a host)
from fixtures.postgres import start_cluster, stop_cluster  # noqa: E402

sys.path.insert(0, str(conftest.ENGINE_LINK.parent))

from caretaker.data.pg_purge import PG_PURGE  # noqa: E402
from caretaker.foundation import argspec  # noqa: E402
from caretaker.foundation.config import Settings  # noqa: E402
from caretaker.foundation.tasks import Context  # noqa: E402

SERVER = ["fsync=on", "shared_buffers=1GB", "max_wal_size=8GB", "checkpoint_timeout=30min", "autovacuum=off"]
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", 15))


def build_table(conn, name, rows, expired):
    """rows rows, the first `expired` of them 30+ days old, the rest within the last day."""
    conn.execute(f"CREATE TABLE {name} (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, payload text NOT NULL)")
    conn.execute(
        f"""INSERT INTO {name} (created_at, payload)
            SELECT CASE WHEN g <= %(expired)s
                        THEN now() - interval '40 days' + g * (interval '10 days' / %(expired)s)
                        ELSE now() - interval '1 day' + (g - %(expired)s) * (interval '23 hours' / (%(rows)s - %(expired)s)) END,
                   md5(g::text) || md5((g * 7)::text)
              FROM generate_series(1, %(rows)s) g""",
        {"rows": rows, "expired": expired},
    )
    conn.execute(f"CREATE INDEX {name}_created_at ON {name} (created_at)")
    conn.execute(f"VACUUM ANALYZE {name}")


def insert_rows(conninfo, table, ready, stop, results):
    """The application: one row at a time, each insert timed, until told to stop."""
    import psycopg

    latencies = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        query = f"INSERT INTO {table} (created_at, payload) VALUES (now(), 'live insert')"
        ready.set()
        while not stop.is_set():
            started = time.perf_counter()
            conn.execute(query)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.002)
    results.put(latencies)


class Inserter:
    """Inserts rows from a process of its own, as an application would: the purge shares the
    machine with it, not this script's interpreter."""

    def __init__(self, conninfo, table):
        context = multiprocessing.get_context("spawn")
        self.ready, self.stop_event, self.results = context.Event(), context.Event(), context.Queue()
        self.process = context.Process(target=insert_rows, args=(conninfo, table, self.ready, self.stop_event, self.results), daemon=True)

    def start(self):
        self.process.start()
        if not self.ready.wait(60):
            raise SystemExit("the inserter did not connect within 60 s")

    def stop(self):
        self.stop_event.set()
        latencies = self.results.get(timeout=60)
        self.process.join()
        return latencies


def p99(values):
    return statistics.quantiles(values, n=100)[98]


def while_inserting(conninfo, table, work):
    inserter = Inserter(conninfo, table)
    inserter.start()
    time.sleep(0.5)
    started = time.perf_counter()
    outcome = work()
    elapsed = time.perf_counter() - started
    return elapsed, outcome, inserter.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--expired", type=int, default=2_000_000)
    parser.add_argument("--table-options", type=json.loads, default={}, help="pg_purge table options to try instead of the defaults (JSON)")
    options = parser.parse_args()

    import psycopg

    cluster = start_cluster(SERVER)
    state = pathlib.Path(tempfile.mkdtemp(prefix="caretaker-bench-"))
    try:
        conninfo = cluster.conninfo()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            started = time.perf_counter()
            for name in ("seed_events", "caretaker_events"):
                build_table(conn, name, options.rows, options.expired)
            conn.execute("CHECKPOINT")
            print(f"built 2 tables of {options.rows:,} rows ({options.expired:,} expired) in {time.perf_counter() - started:.0f} s", flush=True)

        idle = Inserter(conninfo, "seed_events")
        idle.start()
        time.sleep(IDLE_SECONDS)
        idle_latencies = idle.stop()

        def seed():
            with psycopg.connect(conninfo, autocommit=True) as conn:
                return conn.execute("DELETE FROM seed_events WHERE created_at < now() - interval '7 days'").rowcount

        seed_seconds, seed_deleted, seed_latencies = while_inserting(conninfo, "seed_events", seed)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

        settings = Settings(host="bench", state_dir=str(state))
        args = argspec.validate(
            PG_PURGE.argument_spec,
            {"conninfo": conninfo, "tables": [{"name": "caretaker_events", "time_column": "created_at", "older_than": "7d", **options.table_options}]},
        )

        def caretaker():
            return PG_PURGE.run(args, Context(job="bench", settings=settings))

        purge_seconds, purge_result, purge_latencies = while_inserting(conninfo, "caretaker_events", caretaker)
    finally:
        stop_cluster(cluster)
        shutil.rmtree(state, ignore_errors=True)

    assert seed_deleted == options.expired, seed_deleted
    assert purge_result["rows_deleted"] == options.expired, purge_result
    idle_p99 = p99(idle_latencies)
    rows = [
        ("", "seed: one DELETE", "caretaker: pg_purge", "ratio", "goal"),
        ("total time (s)", f"{seed_seconds:.2f}", f"{purge_seconds:.2f}", f"{purge_seconds / seed_seconds:.2f}x", "<= 2x"),
        ("longest transaction (s)", f"{seed_seconds:.2f}", f"{purge_result['longest_batch_seconds']:.3f}", "", "< 1 s"),
        ("batches", "1", str(purge_result["batches"]), "", ""),
        (
            "insert p99 (ms), idle " + f"{idle_p99 * 1000:.2f}",
            f"{p99(seed_latencies) * 1000:.2f} ({p99(seed_latencies) / idle_p99:.2f}x)",
            f"{p99(purge_latencies) * 1000:.2f}",
            f"{p99(purge_latencies) / idle_p99:.2f}x",
            "<= 2x idle",
        ),
        ("inserts during the run", str(len(seed_latencies)), str(len(purge_latencies)), "", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    report = {
        "name": "pg_purge",
        "baseline": {
            "command": "DELETE FROM t WHERE created_at < now() - interval '7 days'",
            "seconds": seed_seconds,
            "insert_p99_seconds": p99(seed_latencies),
        },
        "measured": {
            "command": "pg_purge with default batch settings",
            "seconds": purge_seconds,
            "longest_transaction_seconds": purge_result["longest_batch_seconds"],
            "batches": purge_result["batches"],
            "insert_p99_seconds": p99(purge_latencies),
        },
        "idle_insert_p99_seconds": idle_p99,
        "ratio": purge_seconds / seed_seconds,
        "insert_p99_ratio": p99(purge_latencies) / idle_p99,
        "rows": options.rows,
        "expired": options.expired,
        "environment": {"cpu_count": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(), "postgresql_settings": SERVER},
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    (results / "pg_purge.json").write_text(json.dumps(report, indent=2) + "\n")
    goals = {
        "total time <= 2x the DELETE": report["ratio"] <= 2,
        "longest transaction < 1 s": purge_result["longest_batch_seconds"] < 1,
        "insert p99 <= 2x idle": report["insert_p99_ratio"] <= 2,
    }
    missed = [goal for goal, met in goals.items() if not met]
    if missed:
        print("missed goals: " + "; ".join(missed))
        sys.exit(1)


if __name__ == "__main__":
    main()
