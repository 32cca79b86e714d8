"""What every benchmark shares: run a baseline and a measured command side by side, report.

    from common import Command, compare

    compare(
        "runner_start",
        baseline=Command("/bin/true", ["/bin/sh", "-c", "/bin/true"]),
        measured=Command("caretaker run noop", ["/bin/sh", "-c", "caretaker run noop"], env=env),
        goal_seconds=0.150,
    )

Both commands run REPEAT times, interleaved (baseline, measured, measured, baseline, ...) so
they see the same machine load and neither always goes first; the table shows medians, the
ratio measured/baseline and, when asked (rss=True), the peak resident memory of each command
and its children (3 extra runs each). The result goes to bench-results/NAME.json with the
environment it was measured in. Benchmarks with steps of their own use interleaved(),
median(), write_result() and met() (exit 1 on a missed goal).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"


@dataclasses.dataclass
class Command:
    label: str
    argv: list
    env: dict | None = None
    cwd: str | None = None


def engine_pythonpath() -> str:
    """The directory that makes `import caretaker` find this checkout's engine (tests/conftest.py links it)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest

    return str(conftest.ENGINE_LINK.parent)


def interleaved(runs: int, steps: dict, before_round=None) -> dict:
    """Call each step `runs` times, reversing the order every round (A B, B A, A B, ...), so no
    step always runs first on a colder cache or last on a warmer one; {name: [results]}.
    before_round(), when given, prepares each round (fresh data both steps start from)."""
    names = list(steps)
    results = {name: [] for name in names}
    for round_ in range(runs):
        if before_round:
            before_round()
        for name in names if round_ % 2 == 0 else names[::-1]:
            results[name].append(steps[name]())
    return results


def median(values) -> float:
    return statistics.median(values)


def met(goals: dict) -> None:
    """Print each goal (text: met?) and exit 1 when one was missed."""
    for goal, ok in goals.items():
        print(f"  goal {goal}: {'met' if ok else 'MISSED'}")
    missed = [goal for goal, ok in goals.items() if not ok]
    if missed:
        print("missed goals: " + "; ".join(missed))
        sys.exit(1)


def write_result(name: str, result: dict) -> None:
    """bench-results/NAME.json, with the environment it was measured in."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({**result, "environment": environment()}, indent=2) + "\n")


def run_once(command: Command) -> tuple:
    """(wall seconds, CPU seconds: user + system of the command and its children) of one run.

    CPU time hardly moves with the machine's load, wall time does: both are reported."""
    start = time.perf_counter()
    proc = subprocess.Popen(command.argv, env=command.env, cwd=command.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command.label}: exited {os.waitstatus_to_exitcode(status)}\n{stderr.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def peak_rss_kib(command: Command) -> int:
    """Peak resident memory (KiB) of the command and its children, measured by GNU time.

    A child forked from this Python process would inherit its memory high-water mark, so a
    small C program starts the command instead.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        argv = ["/usr/bin/time", "-f", "%M", "-o", report.name, *command.argv]
        proc = subprocess.run(argv, env=command.env, cwd=command.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{command.label}: exited {proc.returncode}\n{proc.stderr.decode(errors='replace')}")
        return int(report.read().split()[-1])


def environment() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def summary(command: Command, runs: list, rss: bool) -> dict:
    walls = [wall for wall, _cpu in runs]
    result = {
        "label": command.label,
        "command": command.argv,
        "median_seconds": statistics.median(walls),
        "min_seconds": min(walls),
        "max_seconds": max(walls),
        "median_cpu_seconds": statistics.median(cpu for _wall, cpu in runs),
        "load_average": os.getloadavg(),
    }
    if rss:
        result["peak_rss_kib"] = max(peak_rss_kib(command) for _run in range(3))
    return result


def compare(
    name: str,
    baseline: Command,
    measured: Command,
    *,
    repeat: int = 21,
    warmup: int = 2,
    rss: bool = False,
    goal_seconds: float | None = None,
    goal_ratio: float | None = None,
    notes: str = "",
) -> dict:
    """Measure both commands side by side, print a table, write bench-results/NAME.json.

    goal_seconds: the measured median must not exceed this; goal_ratio: measured/baseline must
    not exceed this. The process exits 1 when a goal is missed, after writing the result.
    """
    for _run in range(warmup):
        run_once(baseline)
        run_once(measured)
    runs = interleaved(repeat, {"baseline": lambda: run_once(baseline), "measured": lambda: run_once(measured)})
    base, meas = summary(baseline, runs["baseline"], rss), summary(measured, runs["measured"], rss)
    ratio = meas["median_seconds"] / base["median_seconds"] if base["median_seconds"] else float("inf")
    goals = []
    if goal_seconds is not None:
        goals.append({"goal": f"measured median <= {goal_seconds * 1000:.0f} ms", "met": meas["median_seconds"] <= goal_seconds})
    if goal_ratio is not None:
        goals.append({"goal": f"measured/baseline <= {goal_ratio:g}", "met": ratio <= goal_ratio})

    result = {
        "name": name,
        "repeat": repeat,
        "baseline": base,
        "measured": meas,
        "ratio": ratio,
        "goals": goals,
        "notes": notes,
        "environment": environment(),
    }
    print_table(result, rss)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    if not all(goal["met"] for goal in goals):
        sys.exit(1)
    return result


def print_table(result: dict, rss: bool) -> None:
    print(f"\n{result['name']}: median of {result['repeat']} interleaved runs")
    header = f"  {'':9} {'command':40} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'CPU ms':>7}"
    print(header + (f" {'peak RSS MiB':>13}" if rss else ""))
    for role in ("baseline", "measured"):
        row = result[role]
        line = (f"  {role:9} {row['label'][:40]:40} {row['median_seconds'] * 1000:10.1f} {row['min_seconds'] * 1000:8.1f}"
                f" {row['max_seconds'] * 1000:8.1f} {row['median_cpu_seconds'] * 1000:7.1f}")
        print(line + (f" {row['peak_rss_kib'] / 1024:13.1f}" if rss else ""))
    print(f"  ratio measured/baseline: {result['ratio']:.1f}x; load average when measured {result['measured']['load_average'][0]:.1f}"
          f" on {os.cpu_count()} CPUs (CPU ms: median user + system time, which load hardly changes)")
    for goal in result["goals"]:
        print(f"  goal {goal['goal']}: {'met' if goal['met'] else 'MISSED'}")
    if result["notes"]:
        print(f"  {result['notes']}")
