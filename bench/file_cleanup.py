"""Benchmark: file_cleanup by age against `find DIR -type f -mtime +N -delete`, side by side.

Each round builds two identical trees of small files (half of them 30 days old); find cleans
one, caretaker's engine (in its own Python process, start-up included) the other. Rounds
alternate which of the two goes first, so neither always meets a colder cache; the medians
over RUNS rounds are compared. Goal: caretaker's median at most 1.2x find's, the same files
left. Prints a table, writes bench-results/file_cleanup.json and exits 1 on a missed goal.
FILES=N changes the tree size (default 1,000,000), RUNS=N the rounds (default 5).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import engine_pythonpath, interleaved, median, met, write_result

FILES = int(os.environ.get("FILES", "1000000"))
RUNS = int(os.environ.get("RUNS", "5"))
PER_DIR = 1000
OLD = time.time() - 30 * 86400
GOAL = 1.2

CLEANUP = """
import sys
from caretaker.hygiene.file_cleanup import FILE_CLEANUP
from caretaker.foundation.argspec import validate
from caretaker.foundation.tasks import Context
args = validate(FILE_CLEANUP.argument_spec, {"paths": [sys.argv[1]], "age": "7d", "max_deletions": 10**9})
result = FILE_CLEANUP.run(args, Context())
print(result["deleted"], result["bytes_freed"], len(result["errors"]))
"""


def build_tree(top):
    os.mkdir(top)
    payload = b"x" * 100
    for index in range(FILES):
        if index % PER_DIR == 0:
            directory = os.path.join(top, f"d{index // PER_DIR:05d}")
            os.mkdir(directory)
        path = os.path.join(directory, f"f{index:07d}.log")
        with open(path, "wb") as handle:
            handle.write(payload)
        if index % 2:
            os.utime(path, (OLD, OLD))


def count(top):
    return sum(len(files) for _dirs, _subdirs, files in os.walk(top))


def timed(argv, env=None):
    os.sync()
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, proc.stdout


def main():
    env = {**os.environ, "PYTHONPATH": engine_pythonpath()}
    work = tempfile.mkdtemp(prefix="bench-file-cleanup-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    trees = {name: os.path.join(work, name) for name in ("find", "caretaker")}
    commands = {
        "find": ["find", trees["find"], "-type", "f", "-mtime", "+7", "-delete"],
        "caretaker": [sys.executable, "-c", CLEANUP, trees["caretaker"]],
    }
    left = {}

    def step(name):
        # The tree is built before each timed run (outside the timing); what is left is counted after.
        def run():
            build_tree(trees[name])
            seconds, output = timed(commands[name], env=env)
            left.setdefault(name, []).append(count(trees[name]))
            shutil.rmtree(trees[name])
            return seconds, output
        return run

    try:
        rounds = interleaved(RUNS, {name: step(name) for name in commands})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = {name: [wall for wall, _output in runs] for name, runs in rounds.items()}
    deleted = [int(output.split()[0]) for _wall, output in rounds["caretaker"]]
    medians = {name: median(walls) for name, walls in seconds.items()}
    ratio = medians["caretaker"] / medians["find"]
    labels = {"find": "find -type f -mtime +7 -delete", "caretaker": "caretaker file_cleanup age=7d"}
    print(f"\nfile_cleanup: {FILES} files, half older than 7 days; {RUNS} rounds, order alternating")
    print(f"  {'command':<34} {'median s':>9} {'min s':>7} {'max s':>7} {'files left':>11}")
    for name, label in labels.items():
        print(f"  {label:<34} {medians[name]:9.2f} {min(seconds[name]):7.2f} {max(seconds[name]):7.2f} {','.join(map(str, sorted(set(left[name])))):>11}")
    print(f"  ratio caretaker/find (medians): {ratio:.2f}x")
    write_result("file_cleanup", {
        "name": "file_cleanup",
        "files": FILES,
        "runs": RUNS,
        "baseline": {"command": labels["find"], "seconds": seconds["find"], "median_seconds": medians["find"], "files_left": left["find"]},
        "measured": {"command": labels["caretaker"], "seconds": seconds["caretaker"], "median_seconds": medians["caretaker"],
                     "files_left": left["caretaker"], "deleted": deleted},
        "ratio": ratio,
        "goal_ratio": GOAL,
    })
    met({
        f"caretaker/find <= {GOAL}x": ratio <= GOAL,
        "caretaker leaves the files find leaves": left["caretaker"] == left["find"] and deleted == [FILES - n for n in left["find"]],
    })


if __name__ == "__main__":
    main()
