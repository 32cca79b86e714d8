"""Benchmark: file_cleanup by age against `find DIR -type f -mtime +N -delete`, side by side.

Two identical trees of small files (half of them 30 days old) are built; find cleans one,
caretaker's engine (in its own Python process, start-up included) the other. Prints a
table and writes bench-results/file_cleanup.json. FILES=N changes the tree size.
"""

import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENGINE_PARENT = ROOT / ".build" / "engine"
FILES = int(os.environ.get("FILES", "1000000"))
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


def timed(argv, env=None):
    os.sync()
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, proc.stdout.strip()


def count(top):
    return sum(len(files) for _dirs, _subdirs, files in os.walk(top))


def main():
    if not (ENGINE_PARENT / "caretaker").exists():
        ENGINE_PARENT.mkdir(parents=True, exist_ok=True)
        os.symlink(ROOT / "plugins" / "module_utils", ENGINE_PARENT / "caretaker")
    work = tempfile.mkdtemp(prefix="bench-file-cleanup-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    try:
        trees = {name: os.path.join(work, name) for name in ("find", "caretaker")}
        for top in trees.values():
            os.mkdir(top)
            build_tree(top)
        env = {**os.environ, "PYTHONPATH": str(ENGINE_PARENT)}
        baseline, _deleted = timed(["find", trees["find"], "-type", "f", "-mtime", "+7", "-delete"])
        measured, output = timed([sys.executable, "-c", CLEANUP, trees["caretaker"]], env=env)
        left = {name: count(top) for name, top in trees.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    deleted = int(output.split()[0])
    ratio = measured / baseline
    rows = [
        ("find -type f -mtime +7 -delete", baseline, FILES - left["find"]),
        ("caretaker file_cleanup age=7d", measured, deleted),
    ]
    print(f"file_cleanup: {FILES} files, half older than 7 days")
    print(f"{'command':<34} {'seconds':>9} {'deleted':>9}")
    for name, seconds, gone in rows:
        print(f"{name:<34} {seconds:>9.2f} {gone:>9}")
    print(f"ratio caretaker/find: {ratio:.2f} (goal <= {GOAL})")
    if left["find"] != left["caretaker"]:
        print(f"MISMATCH: find left {left['find']} files, caretaker left {left['caretaker']}")
    result = {
        "name": "file_cleanup",
        "baseline": {"command": rows[0][0], "seconds": round(baseline, 3)},
        "measured": {"command": rows[1][0], "seconds": round(measured, 3)},
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "files": FILES,
        "deleted": {"find": FILES - left["find"], "caretaker": deleted},
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "kernel": platform.release()},
    }
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "file_cleanup.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if left["find"] == left["caretaker"] else 1


if __name__ == "__main__":
    sys.exit(main())
