"""How long `caretaker run` takes for a job that does nothing, against starting /bin/true.

Cron starts both the same way (/bin/sh -c '...'); the difference is what the runner itself
costs a job: Python start-up, reading the job file, lock, ledger, metrics.

The engine is installed as the runtime role installs it: copied to a fresh directory, run by
a command like the role's (`python -I`, the engine's directory first on sys.path), with
PYTHONDONTWRITEBYTECODE=1 as these machines set it (and -B, since -I ignores PYTHON*
variables), so no run leaves bytecode for the next one. Two cases, each side by side with
/bin/true:
  source    the copy as it is: Python compiles every engine module on each start;
  compiled  the copy byte-compiled with `python -m compileall -q`, as the role does.
Goal: the compiled case's median under 100 ms (the source case is reported, not judged).
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml
from common import ROOT, Command, compare

COMMAND = """import sys
sys.path.insert(0, {lib!r})
from caretaker.cli import main
sys.exit(main())
"""


def install(root, compiled):
    """The engine in root/lib/caretaker and the command that runs it; returns the command's path."""
    lib = os.path.join(root, "lib")
    shutil.copytree(ROOT / "plugins" / "module_utils", os.path.join(lib, "caretaker"), ignore=shutil.ignore_patterns("__pycache__"))
    if compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", lib], check=True)
    command = os.path.join(root, "caretaker")
    with open(command, "w") as handle:
        handle.write(COMMAND.format(lib=lib))
    return command


def main():
    with tempfile.TemporaryDirectory(prefix="bench-runner-start-") as root:
        etc = os.path.join(root, "etc")
        os.makedirs(os.path.join(etc, "jobs"))
        settings = {
            "host": "bench",
            "state_dir": os.path.join(root, "state"),
            "log_dir": os.path.join(root, "log"),
            "metrics_dir": os.path.join(root, "metrics"),
        }
        with open(os.path.join(etc, "caretaker.yml"), "w") as handle:
            yaml.safe_dump(settings, handle)
        with open(os.path.join(etc, "jobs", "noop.yml"), "w") as handle:
            yaml.safe_dump({"kind": "noop", "schedule": "* * * * *"}, handle)

        env = {**os.environ, "CARETAKER_ETC": etc, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        true = Command("/bin/true", ["/bin/sh", "-c", "/bin/true"], env=env)
        # The case without a goal first: compare() exits 1 on the compiled case's missed goal.
        for case, goal in (("source", None), ("compiled", 0.100)):
            command = install(os.path.join(root, case), compiled=case == "compiled")
            caretaker = f"{shlex.quote(sys.executable)} -I -B {shlex.quote(command)} run noop"
            compare(
                f"runner_start_{case}" if case == "source" else "runner_start",
                baseline=true,
                measured=Command(f"caretaker run noop, engine {case}", ["/bin/sh", "-c", caretaker], env=env),
                rss=True,
                goal_seconds=goal,
                notes=f"engine {case}: {'byte-compiled by compileall' if case == 'compiled' else 'no bytecode, compiled on every start'};"
                f" PYTHONDONTWRITEBYTECODE=1; caretaker = {caretaker}",
            )
            leftover = [name for _dir, _subdirs, files in os.walk(os.path.join(root, "source")) for name in files if name.endswith(".pyc")]
            if leftover:
                raise SystemExit(f"the source case wrote bytecode ({len(leftover)} files): it did not measure what it claims")


if __name__ == "__main__":
    main()
