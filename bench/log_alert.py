"""Benchmark log_alert: a full scan of a 1 GiB access log against `grep -c`, and an incremental run.

1. Full scan: `LC_ALL=C grep -c -E PATTERN LOG` against caretaker's engine counting the
   same pattern in the same file (its own Python process, start-up and ledger included),
   run interleaved so both see the same page cache and load. Goal: at most 2x grep.
2. Incremental: 1 MiB is appended to the 1 GiB log, then log_alert reads what is new
   (timed in-process: the engine's work, not Python's start-up). The same is done on a
   1 MiB log for comparison, to show the time does not depend on the file's size.
   Goal: under 50 ms.

Prints a table and writes bench-results/log_alert.json. SIZE_MIB=N changes the log size.
"""

import json
import os
import pathlib
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIZE = int(os.environ.get("SIZE_MIB", "1024")) << 20
APPEND = 1 << 20
PATTERN = '" 5[0-9][0-9] '
FULL_RUNS = 5
INCREMENTAL_RUNS = 21
GOAL_RATIO = 2.0
GOAL_INCREMENTAL = 0.050

SCAN = """
import sys, tempfile
from caretaker.checks import log_alert
from caretaker.foundation.argspec import validate
from caretaker.foundation.config import Settings
from caretaker.foundation.tasks import Context
args = validate(log_alert.LOG_SPEC, {"path": sys.argv[1], "start_at": "beginning", "rules": [{"name": "5xx", "pattern": sys.argv[2]}]})
with tempfile.TemporaryDirectory() as state:
    result = log_alert.LOG_ALERT.run(args, Context(settings=Settings(state_dir=state)))
print(result["findings"][0]["details"]["run_matches"])
"""


def engine_path():
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest  # links plugins/module_utils as the `caretaker` package

    return str(conftest.ENGINE_LINK.parent)


def access_lines(count, seed):
    rng = random.Random(seed)
    paths = ["/", "/api/items", "/api/cart", "/static/app.js", "/login", "/search?q=shoes", "/item/12345"]
    agents = ['"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"', '"curl/8.5.0"']
    statuses, weights = [200, 301, 304, 404, 500, 502, 503], [80, 5, 5, 6, 2, 1, 1]
    return "".join(
        f'198.51.100.{n % 255} - - [23/Nov/2026:10:{n % 60:02d}:{n * 7 % 60:02d} +0000] "GET {rng.choice(paths)} HTTP/1.1" '
        f'{rng.choices(statuses, weights)[0]} {rng.randint(100, 90000)} "https://shop.example.org/" {rng.choice(agents)}\n'
        for n in range(count)
    ).encode()


def write_log(path, size):
    block = access_lines(50000, 1)
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            handle.write(block)
            written += len(block)


def timed(argv, env):
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, proc.stdout.strip()


def full_scan(log, env):
    grep = ["grep", "-c", "-E", PATTERN, log]
    engine = [sys.executable, "-c", SCAN, log, PATTERN]
    timed(grep, env)  # warm the page cache
    grep_times, engine_times = [], []
    for _run in range(FULL_RUNS):
        seconds, grep_count = timed(grep, env)
        grep_times.append(seconds)
        seconds, engine_count = timed(engine, env)
        engine_times.append(seconds)
    if grep_count != engine_count:
        raise SystemExit(f"counts differ: grep {grep_count}, log_alert {engine_count}")
    return grep_times, engine_times, int(grep_count)


def incremental(log, state_dir):
    from caretaker.checks import log_alert
    from caretaker.foundation.argspec import validate
    from caretaker.foundation.config import Settings
    from caretaker.foundation.tasks import Context

    args = validate(log_alert.LOG_SPEC, {"path": log, "start_at": "end", "rules": [{"name": "5xx", "pattern": PATTERN}]})
    ctx = Context(settings=Settings(state_dir=state_dir))
    log_alert.LOG_ALERT.run(args, ctx)  # first run: start watching at the end
    chunk = access_lines(5500, 2)[:APPEND]
    chunk = chunk[: chunk.rfind(b"\n") + 1]
    expected = sum(1 for line in chunk.splitlines() if re.search(PATTERN.encode(), line))
    times = []
    for _run in range(INCREMENTAL_RUNS):
        with open(log, "ab") as handle:
            handle.write(chunk)
        started = time.perf_counter()
        result = log_alert.LOG_ALERT.run(args, ctx)
        times.append(time.perf_counter() - started)
        if result["findings"][0]["details"]["run_matches"] != expected:
            raise SystemExit(f"incremental run counted {result['findings'][0]['details']['run_matches']} matches, expected {expected}")
    return times


def stats(times):
    return {"median_seconds": statistics.median(times), "min_seconds": min(times), "max_seconds": max(times), "runs": len(times)}


def main():
    os.environ["PYTHONPATH"] = engine_path()
    sys.path.insert(0, os.environ["PYTHONPATH"])
    env = {**os.environ, "LC_ALL": "C"}
    with tempfile.TemporaryDirectory(prefix="bench-log-alert-") as root:
        big, small = os.path.join(root, "access.log"), os.path.join(root, "small.log")
        write_log(big, SIZE)
        write_log(small, APPEND)
        size_mib = os.path.getsize(big) / 2**20
        grep_times, engine_times, matches = full_scan(big, env)
        inc_big = incremental(big, os.path.join(root, "state-big"))
        inc_small = incremental(small, os.path.join(root, "state-small"))

    full = {"baseline": {"label": f"grep -c -E '{PATTERN}'", **stats(grep_times)},
            "measured": {"label": "log_alert full scan (new process)", **stats(engine_times)}}
    full["ratio"] = full["measured"]["median_seconds"] / full["baseline"]["median_seconds"]
    inc = {"baseline": {"label": "incremental +1 MiB on a 1 MiB log", **stats(inc_small)},
           "measured": {"label": f"incremental +1 MiB on a {size_mib:.0f} MiB log", **stats(inc_big)}}
    inc["ratio"] = inc["measured"]["median_seconds"] / inc["baseline"]["median_seconds"]
    goals = [
        {"goal": f"full scan <= {GOAL_RATIO:g}x grep -c", "met": full["ratio"] <= GOAL_RATIO},
        {"goal": f"incremental run < {GOAL_INCREMENTAL * 1000:.0f} ms", "met": inc["measured"]["median_seconds"] < GOAL_INCREMENTAL},
    ]
    result = {
        "name": "log_alert",
        "log_mib": round(size_mib, 1),
        "matches": matches,
        "full_scan": full,
        "incremental": inc,
        "goals": goals,
        "environment": {"cpu_count": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    print(f"\nlog_alert: {size_mib:.0f} MiB access log, {matches} lines matching {PATTERN!r}")
    print(f"  {'':9} {'command':44} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for title, part in (("full scan", full), ("incremental", inc)):
        print(f"  {title}")
        for role in ("baseline", "measured"):
            row = part[role]
            print(f"  {role:9} {row['label'][:44]:44} {row['median_seconds'] * 1000:10.1f} {row['min_seconds'] * 1000:8.1f} {row['max_seconds'] * 1000:8.1f}")
        print(f"  ratio measured/baseline: {part['ratio']:.2f}x")
    for goal in goals:
        print(f"  goal {goal['goal']}: {'met' if goal['met'] else 'MISSED'}")
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    (results / "log_alert.json").write_text(json.dumps(result, indent=2) + "\n")
    if not all(goal["met"] for goal in goals):
        sys.exit(1)


if __name__ == "__main__":
    main()
