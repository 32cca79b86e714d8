"""log_alert: error-rate spikes in application logs, read incrementally.

Where a log was read up to is kept in the ledger as (device, inode, hash of the first
line, offset). On the next run:
- same file, same first line, grown: read from the offset;
- same inode but shorter or a different first line (copytruncate, truncation): first
  finish the copy that still starts with the remembered first line, then read the
  file from the start;
- another inode (rotated by rename): first finish the rotated file (found by its inode
  among the log's siblings), then read the new one from the start.
Only complete lines are counted, so a line being written is counted once, next time.

Each run's counts are stored per rule; a rule's window sums the runs within it, which
needs no timestamp parsing and works for any log format.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass

from ..foundation.errors import ConfigError
from ..foundation.tasks import Task
from . import check
from .check import Finding, unknown

CHUNK = 16 << 20
HEAD = 4096
COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".z")
STATUS_CLASS = re.compile(r"^[1-5]([0-9]{2}|xx)$")

RULE_OPTIONS = {
    "name": {"type": "str", "required": True},
    "pattern": {"type": "str"},
    "status": {"type": "list", "elements": "str"},
    "measure": {"type": "str", "default": "count", "choices": ["count", "ratio"]},
    **check.THRESHOLD_OPTIONS,
    "window": {"type": "int", "default": 300},
    "min_volume": {"type": "int", "default": 0},
    "baseline_factor": {"type": "float"},
    "baseline_offset": {"type": "float", "default": 24.0},
    "ignore_case": {"type": "bool", "default": False},
}

LOG_SPEC = {
    "path": {"type": "path", "required": True},
    "rules": {"type": "list", "elements": "dict", "required": True, "options": RULE_OPTIONS},
    "start_at": {"type": "str", "default": "end", "choices": ["end", "beginning"]},
    "samples": {"type": "int", "default": 5},
    "runbook": {"type": "str"},
}


def status_regex(classes, field):
    """A regex for HTTP status codes in common/combined access logs: `"GET / HTTP/1.1" 503 123`."""
    alternatives = []
    for index, item in enumerate(classes):
        item = str(item).lower()
        if not STATUS_CLASS.match(item):
            raise ConfigError(f"{item!r} is not a status code or class like 404 or 5xx", field=f"{field}[{index}]")
        alternatives.append(item.replace("x", "[0-9]"))
    return '" (?:' + "|".join(alternatives) + ") "


@dataclass(frozen=True)
class Rule:
    spec: dict
    regex: re.Pattern
    limits: tuple

    @property
    def name(self):
        return self.spec["name"]


def compile_rules(rules):
    if not rules:
        raise ConfigError("must list at least one rule", field="rules")
    compiled = []
    seen = set()
    for index, rule in enumerate(rules):
        field = f"rules[{index}]"
        if rule["name"] in seen:
            raise ConfigError(f"rule name {rule['name']!r} is used twice", field=f"{field}.name")
        seen.add(rule["name"])
        if bool(rule["pattern"]) == bool(rule["status"]):
            raise ConfigError("set exactly one of pattern or status", field=f"{field}.pattern")
        source = rule["pattern"] or status_regex(rule["status"], f"{field}.status")
        flags = re.MULTILINE | (re.IGNORECASE if rule["ignore_case"] else 0)
        try:
            regex = re.compile(source.encode(), flags)
        except re.error as exc:
            raise ConfigError(f"invalid regular expression {source!r}: {exc}", field=f"{field}.pattern") from None
        if regex.search(b""):
            raise ConfigError(f"{source!r} matches an empty line, so it would count every line", field=f"{field}.pattern")
        try:  # the match runs on to the end of its line, so one line counts once however often it matches
            regex = re.compile(b"(?:" + source.encode() + b")[^\n]*", flags)
        except re.error as exc:
            raise ConfigError(f"{source!r} cannot be matched line by line ({exc}); use ignore_case instead of inline flags",
                              field=f"{field}.pattern") from None
        limits = check.thresholds(rule, field)
        if rule["window"] <= 0:
            raise ConfigError("must be a positive number of seconds", field=f"{field}.window")
        if rule["measure"] == "ratio" and any(limit is not None and limit > 100 for limit in limits):
            raise ConfigError("a ratio threshold is a percentage, at most 100", field=f"{field}.critical")
        compiled.append(Rule(rule, regex, limits))
    return compiled


# -- reading ----------------------------------------------------------------------------


def read_head(fd):
    """Hash of the first line, the file's identity across truncation; None until it is complete."""
    data = os.pread(fd, HEAD, 0)
    newline = data.find(b"\n")
    if newline >= 0:
        data = data[: newline + 1]
    elif len(data) < HEAD:
        return None
    return hashlib.sha256(data).hexdigest()


def siblings(path):
    """Rotated copies of path (path.1, path-20261123, ...), uncompressed ones only."""
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    found = []
    for name in names:
        if name != base and name.startswith(base) and name[len(base)] in ".-_" and not name.lower().endswith(COMPRESSED):
            found.append(os.path.join(directory, name))
    return found


def find_rotated(path, cursor, current_inode):
    """The file holding the rest of what cursor pointed into, or None if it is gone."""
    for candidate in siblings(path):
        try:
            stat = os.stat(candidate)
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) == (cursor["device"], cursor["inode"]) and stat.st_ino != current_inode:
            return candidate  # renamed away
    for candidate in siblings(path):  # copytruncate: a copy that starts with the same first line
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        try:
            stat = os.fstat(fd)
            if stat.st_ino != current_inode and stat.st_size >= cursor["offset"] and read_head(fd) == cursor["head"]:
                return candidate
        finally:
            os.close(fd)
    return None


def rotated_since(path, rotated, current_inode):
    """Files rotated after `rotated` (when the log rotated more than once between runs), oldest first."""
    base = os.stat(rotated)
    newer = []
    for candidate in siblings(path):
        try:
            stat = os.stat(candidate)
        except OSError:
            continue
        if stat.st_ino not in (base.st_ino, current_inode) and stat.st_mtime_ns >= base.st_mtime_ns:
            newer.append((stat.st_mtime_ns, candidate))
    return [candidate for _mtime, candidate in sorted(newer)]


class Counter:
    """Counts lines and matching lines per rule across the pieces of one run's reading.

    The regex and newline counting run in C over large chunks; Python code runs once per
    chunk, not per line. All lines are counted only when a rule needs them (a ratio or a
    minimum volume).
    """

    def __init__(self, compiled, keep):
        self.compiled = compiled
        self.lines = 0 if any(rule.spec["measure"] == "ratio" or rule.spec["min_volume"] for rule in compiled) else None
        self.matches = [0] * len(compiled)
        self.samples = [collections.deque(maxlen=keep) for rule in compiled]

    def feed(self, fd, start, end, final=False):
        """Count complete lines in [start, end); return the offset after the last one counted."""
        pos = start
        while pos < end:
            chunk = os.pread(fd, min(CHUNK, end - pos), pos)
            if not chunk:
                break
            stop = chunk.rfind(b"\n") + 1
            if stop == 0:
                if len(chunk) < CHUNK and not (final and pos + len(chunk) >= end):
                    break  # a line still being written
                stop = len(chunk)  # the end of a finished file, or a line longer than CHUNK
            self._count(chunk, stop)
            pos += stop
        return pos

    def _count(self, chunk, stop):
        if self.lines is not None:
            self.lines += chunk.count(b"\n", 0, stop) + (0 if chunk[stop - 1 : stop] == b"\n" else 1)
        for index, rule in enumerate(self.compiled):
            samples = self.samples[index]
            # keep only the last few matches, numbered, without a Python step per match
            last = collections.deque(zip(rule.regex.finditer(chunk, 0, stop), itertools.count(1)), maxlen=samples.maxlen or 1)
            if not last:
                continue
            self.matches[index] += last[-1][1]
            for match in (pair[0] for pair in last):
                samples.append(chunk[chunk.rfind(b"\n", 0, match.start()) + 1 : match.end()])


def scan(path, cursor, counter, start_at):
    """Read what is new in path since cursor; return (new cursor, notes about rotation)."""
    notes = []
    fd = os.open(path, os.O_RDONLY)  # fstat of the open file: a rotation can't slip between stat and read
    try:
        stat = os.fstat(fd)
        head = read_head(fd)
        if cursor is None:
            begin = 0 if start_at == "beginning" else stat.st_size
            if begin:  # start watching at the end of the last complete line
                tail = os.pread(fd, min(begin, 1 << 16), begin - min(begin, 1 << 16))
                begin -= len(tail) - (tail.rfind(b"\n") + 1)
                notes.append("started watching at the end of the file")
        elif (stat.st_dev, stat.st_ino) == (cursor["device"], cursor["inode"]) and stat.st_size >= cursor["offset"] and (
            cursor["head"] is None or cursor["head"] == head
        ):
            begin = cursor["offset"]
        else:
            if (stat.st_dev, stat.st_ino) == (cursor["device"], cursor["inode"]):
                notes.append("truncated (copytruncate or rewritten)")
            else:
                notes.append("rotated")
            rotated = find_rotated(path, cursor, stat.st_ino) if cursor["offset"] else None
            if rotated:
                for earlier, begin_at in [(rotated, cursor["offset"])] + [(name, 0) for name in rotated_since(path, rotated, stat.st_ino)]:
                    old = os.open(earlier, os.O_RDONLY)
                    try:
                        counter.feed(old, begin_at, os.fstat(old).st_size, final=True)
                    finally:
                        os.close(old)
                    notes.append(f"read the rest of {earlier}" if begin_at else f"read {earlier}, rotated since")
            elif cursor["offset"]:
                notes.append("the rotated file is gone or compressed: its unread rest was skipped")
            begin = 0
        offset = counter.feed(fd, begin, stat.st_size)
        return {"device": stat.st_dev, "inode": stat.st_ino, "head": head, "offset": offset}, notes
    finally:
        os.close(fd)


# -- judging ----------------------------------------------------------------------------


def window_totals(db, consumer, path, rule, since, until):
    row = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(lines), 0), COALESCE(SUM(matches), 0) FROM log_counts "
        "WHERE consumer = ? AND path = ? AND rule = ? AND ts > ? AND ts <= ?",
        (consumer, path, rule, since, until),
    ).fetchone()
    return row[0], row[1], row[2]


def recent_samples(db, consumer, path, rule, since, keep):
    rows = db.execute(
        "SELECT samples FROM log_counts WHERE consumer = ? AND path = ? AND rule = ? AND ts > ? AND samples IS NOT NULL ORDER BY ts DESC LIMIT 20",
        (consumer, path, rule, since),
    ).fetchall()
    found = []
    for row in rows:
        found = json.loads(row[0]) + found
    return found[-keep:]


def judge(db, consumer, path, compiled, now, keep, lines_counted):
    findings = []
    for compiled_rule in compiled:
        rule, limits = compiled_rule.spec, compiled_rule.limits
        lines, matches = window_totals(db, consumer, path, rule["name"], now - rule["window"], now)[1:]
        if not lines_counted:
            lines = None
        value = matches if rule["measure"] == "count" else round(100.0 * matches / lines, 2) if lines else 0.0
        unit = "" if rule["measure"] == "count" else "%"
        window = f"{rule['window']}s"
        samples = recent_samples(db, consumer, path, rule["name"], now - rule["window"], keep)
        details = {"lines": lines, "matches": matches, "window": rule["window"], "samples": samples}
        label = f"log:{rule['name']}"
        if unit:
            described = f"{matches} of {lines} lines in the last {window} ({value}{unit})"
        else:
            described = f"{matches} matching lines in the last {window}" + (f" (of {lines})" if lines is not None else "")
        if lines is not None and lines < rule["min_volume"]:
            findings.append(Finding(label, "ok", f"{described}: below min_volume {rule['min_volume']}", value=value, unit=unit,
                                    warning=limits[0], critical=limits[1], details=details))
            continue
        if rule["baseline_factor"] is not None:
            shift = rule["baseline_offset"] * 3600
            runs, base_lines, base_matches = window_totals(db, consumer, path, rule["name"], now - shift - rule["window"], now - shift)
            base_value = base_matches if rule["measure"] == "count" else (100.0 * base_matches / base_lines if base_lines else 0.0)
            details["baseline"] = round(base_value, 2)
            if runs and value <= rule["baseline_factor"] * base_value:
                findings.append(Finding(label, "ok", f"{described}: within {rule['baseline_factor']}x of the baseline {base_value:g}",
                                        value=value, unit=unit, warning=limits[0], critical=limits[1], details=details))
                continue
        findings.append(check.measured(label, value, unit, limits, described, details=details))
    return findings


def _log_alert(args, ctx):
    from ..foundation.ledger import Ledger

    compiled = compile_rules(args["rules"])  # bad rules stop here, before anything is read
    path = args["path"]
    if not os.path.isfile(path):
        reason = "does not exist" if not os.path.exists(path) else "is not a regular file"
        findings = [unknown(f"log:{rule.name}", f"path: {path} {reason}") for rule in compiled]
        return check.finish(ctx, "log_alert", findings, args["runbook"])
    consumer = ctx.job or "adhoc"
    ledger = Ledger(ctx.settings.database)
    try:
        db = ledger.db
        row = db.execute("SELECT * FROM log_cursor WHERE consumer = ? AND path = ?", (consumer, path)).fetchone()
        counter = Counter(compiled, args["samples"])
        try:
            cursor, notes = scan(path, dict(row) if row else None, counter, args["start_at"])
        except OSError as exc:
            # A rotation can rename the log between the check above and the read.
            problem = f"{path} does not exist" if isinstance(exc, FileNotFoundError) else f"cannot read {path}: {exc.strerror}"
            return check.finish(ctx, "log_alert", [unknown(f"log:{rule.name}", f"path: {problem}") for rule in compiled], args["runbook"])
        now = time.time()
        if not ctx.check_mode:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO log_cursor (consumer, path, device, inode, head, offset, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (consumer, path, cursor["device"], cursor["inode"], cursor["head"], cursor["offset"], now),
            )
            keep_for = max(rule["window"] + (rule["baseline_offset"] * 3600 if rule["baseline_factor"] is not None else 0)
                           for rule in (item.spec for item in compiled))
            db.execute("DELETE FROM log_counts WHERE consumer = ? AND path = ? AND ts < ?", (consumer, path, now - keep_for - 3600))
            for index, rule in enumerate(item.spec for item in compiled):
                samples = [line.decode("utf-8", "replace")[:500] for line in counter.samples[index]]
                db.execute(
                    "INSERT INTO log_counts (consumer, path, rule, ts, lines, matches, samples) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (consumer, path, rule["name"], now, counter.lines or 0, counter.matches[index], json.dumps(samples) if samples else None),
                )
            db.execute("COMMIT")
        findings = judge(db, consumer, path, compiled, now, args["samples"], counter.lines is not None)
    finally:
        ledger.close()
    for finding, matches in zip(findings, counter.matches, strict=True):
        finding.details.update(run_lines=counter.lines, run_matches=matches)
    outcome = check.finish(ctx, "log_alert", findings, args["runbook"])
    outcome.update(path=path, offset=cursor["offset"], notes=notes)
    return outcome


LOG_ALERT = Task(name="log_alert", argument_spec=LOG_SPEC, run=_log_alert)
