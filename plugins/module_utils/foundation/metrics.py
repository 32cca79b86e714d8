"""Prometheus textfile metrics for node_exporter's textfile collector, written atomically."""

from __future__ import annotations

import os
import tempfile


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(families):
    """families: (name, type, help, [(labels dict, value), ...]) -> exposition text."""
    lines = []
    for name, kind, help_text, samples in families:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {float(value)!r}" if label_text else f"{name} {float(value)!r}")
    return "\n".join(lines) + "\n"


def write_textfile(directory, filename, families):
    """Replace directory/filename in one rename, so node_exporter never reads half a file."""
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, filename)
    fd, tmp = tempfile.mkstemp(prefix="." + filename, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(render(families))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def job_families(stats):
    """Metric families for every job in the ledger's job_stats."""

    def samples(column):
        return [({"job": job}, row[column]) for job, row in sorted(stats.items()) if row[column] is not None]

    return [
        ("caretaker_job_last_success_timestamp_seconds", "gauge", "Unix time the job last succeeded.", samples("last_success")),
        ("caretaker_job_last_run_timestamp_seconds", "gauge", "Unix time the job last started.", samples("last_run")),
        ("caretaker_job_duration_seconds", "gauge", "Wall time of the job's last run.", samples("last_duration")),
        ("caretaker_job_last_exit_code", "gauge", "Exit code of the job's last run.", samples("last_exit_code")),
        ("caretaker_job_failures_total", "counter", "Runs of the job that ended in failure.", samples("failures_total")),
    ]
