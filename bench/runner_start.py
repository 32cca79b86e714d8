"""How long `caretaker run` takes for a job that does nothing, against starting /bin/true.

Cron starts both the same way (/bin/sh -c '...'); the difference is what the runner itself
costs a job: Python start-up, reading the job file, lock, ledger, metrics. Goal: at most
150 ms for the whole `caretaker run` of a noop job.
"""

import os
import shlex
import sys
import tempfile

import yaml
from common import Command, compare, engine_pythonpath


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

        env = {**os.environ, "CARETAKER_ETC": etc, "PYTHONPATH": engine_pythonpath()}
        caretaker = f"{shlex.quote(sys.executable)} -m caretaker.cli run noop"
        compare(
            "runner_start",
            baseline=Command("/bin/true", ["/bin/sh", "-c", "/bin/true"], env=env),
            measured=Command("caretaker run noop", ["/bin/sh", "-c", caretaker], env=env),
            rss=True,
            goal_seconds=0.150,
            notes=f"caretaker = {caretaker}",
        )


if __name__ == "__main__":
    main()
