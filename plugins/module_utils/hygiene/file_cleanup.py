"""Delete old files under given directories, safely, and say exactly what went.

Safety rules, all enforced by the walk itself rather than by checks before it:
- directories are opened with O_NOFOLLOW relative to their parent's descriptor and files
  are unlinked relative to their directory's descriptor, so a symlink swapped in during
  the run is never followed;
- a directory on another device than its root is not entered (no crossing mounts);
- files open for writing or locked by any process are skipped; the set of them is read
  from /proc once per run, then each file costs one set lookup;
- system directories are refused unless allow_system_paths is set;
- at most max_deletions files go per run.
Two modes: by age (delete everything older than `age` inline during the walk, which is
what the benchmark measures), and by budget (min_free or max_size: scan first, then
delete oldest first until the target is met).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
import time

from ..foundation import durations
from ..foundation.errors import ConfigError
from ..foundation.tasks import Task

ARGUMENT_SPEC = {
    "paths": {"type": "list", "elements": "path", "required": True},
    "patterns": {"type": "list", "elements": "str", "default": ["*"]},
    "excludes": {"type": "list", "elements": "str", "default": []},
    "age": durations.option(),
    "age_stamp": {"type": "str", "default": "mtime", "choices": ["mtime", "atime", "ctime"]},
    "min_free": {"type": "str"},
    "max_size": {"type": "str"},
    "recurse": {"type": "bool", "default": True},
    "remove_empty_dirs": {"type": "bool", "default": False},
    "skip_busy": {"type": "bool", "default": True},
    "max_deletions": {"type": "int", "default": 10000},
    "allow_system_paths": {"type": "bool", "default": False},
}

# Refused as a cleanup root unless allow_system_paths: these directories themselves, and
# anything below the ones in SYSTEM_TREES.
SYSTEM_DIRS = {
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/var/lib", "/var/log", "/var/cache",
    "/var/spool", "/var/backups", "/var/mail",
}
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr")

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_STAMP_FIELDS = {"mtime": stat.ST_MTIME, "atime": stat.ST_ATIME, "ctime": stat.ST_CTIME}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def parse_size(text):
    """'500M', '2G', '1048576' -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", str(text).lower())
    if not match:
        raise ValueError(f"{text!r} is not a size; use a number with K, M, G or T (e.g. 500M)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def parse_free(text):
    """'15%' -> ('percent', 15.0); '2G' -> ('bytes', 2147483648)."""
    text = str(text).strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent < 100:
            raise ValueError(f"{text!r} is not a percentage between 0 and 100")
        return "percent", percent
    return "bytes", parse_size(text)


def _name_matcher(patterns):
    """One compiled regex for a list of shell patterns; None when it would match everything."""
    if not patterns or "*" in patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns)).match


def check_root(path, allow_system_paths):
    """The path to walk, or ValueError when it is relative or a refused system directory."""
    if not os.path.isabs(path):
        raise ValueError(f"{path!r} must be an absolute path")
    real = os.path.realpath(path)
    refused = real in SYSTEM_DIRS or any(real.startswith(tree + "/") for tree in SYSTEM_TREES)
    if refused and not allow_system_paths:
        shown = path if real == os.path.normpath(path) else f"{path} (resolves to {real})"
        raise ValueError(f"refusing to clean the system directory {shown}; set allow_system_paths to allow it")
    return os.path.normpath(path)  # walked as given: a symlink as the last component is not followed


def busy_files(roots):
    """(st_dev, st_ino) of files under roots that some process has open for writing or locked.

    One pass over /proc for the whole run: per file, the walk then does a set lookup.
    """
    busy = set()
    prefixes = tuple(os.path.realpath(root).rstrip("/") + "/" for root in roots)  # /proc shows real paths
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # the process ended, or belongs to another namespace we may not read
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
                if not target.startswith(prefixes):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                    flags = next((int(line.split()[1], 8) for line in info if line.startswith("flags:")), 0)
                if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                    st = os.stat(f"{fd_dir}/{fd}")
                    busy.add((st.st_dev, st.st_ino))
            except (OSError, ValueError, IndexError):
                continue
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:
                # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a "->" marks a waiter)
                fields = line.replace("->", "").split()
                try:
                    major, minor, inode = fields[5].split(":")
                    busy.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
                except (IndexError, ValueError):
                    continue
    except OSError:
        pass
    return busy


class Cleaner:
    """One run over one or more roots; collects what it deleted (or would), and errors."""

    def __init__(self, args, check_mode, now=None):
        self.check_mode = check_mode
        self.match_name = _name_matcher(args["patterns"])
        self.excluded = _name_matcher(args["excludes"]) if args["excludes"] else None
        self.stamp_field = _STAMP_FIELDS[args["age_stamp"]]
        now = time.time() if now is None else now
        self.cutoff = now - args["age"] if args["age"] is not None else None
        self.recurse = args["recurse"]
        self.remove_empty_dirs = args["remove_empty_dirs"]
        self.max_deletions = args["max_deletions"]
        self.busy = set()
        self.files = []
        self.dirs_removed = []
        self.bytes_freed = 0
        self.errors = []
        self.skipped = []
        self.capped = False
        # budget mode: scan collects (stamp, path, size, blocks, dev, ino); delete takes a chosen set
        self.collect = None
        self.chosen = None

    def error(self, path, exc):
        self.errors.append({"path": path, "error": exc.strerror or str(exc), "errno": exc.errno})

    def clean_root(self, root):
        try:
            fd = os.open(root, _DIR_FLAGS)
        except FileNotFoundError:
            self.skipped.append({"path": root, "reason": "does not exist"})
            return
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                self.skipped.append({"path": root, "reason": "not a directory (symlinks are not followed)"})
            else:
                self.error(root, exc)
            return
        try:
            self._walk(fd, root, os.fstat(fd).st_dev)
        finally:
            os.close(fd)

    def _walk(self, fd, path, device):
        """Clean the directory open as fd; return how many entries remain in it."""
        remaining = 0
        subdirs = []
        match_name, excluded, cutoff, stamp_field = self.match_name, self.excluded, self.cutoff, self.stamp_field
        busy, chosen, collect, check_mode = self.busy, self.chosen, self.collect, self.check_mode
        prefix = path + "/" if path != "/" else "/"
        try:
            entries = os.scandir(fd)
        except OSError as exc:
            self.error(path, exc)
            return 1
        with entries:
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if self.recurse and not (excluded and excluded(name)):
                            subdirs.append(name)
                        remaining += 1
                        continue
                    if not entry.is_file(follow_symlinks=False) or (match_name and not match_name(name)) or (
                        excluded and excluded(name)
                    ):
                        remaining += 1
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.error(prefix + name, exc)
                    remaining += 1
                    continue
                stamp = st[stamp_field]
                if cutoff is not None and stamp >= cutoff:
                    remaining += 1
                    continue
                if chosen is not None and chosen.get((st.st_dev, st.st_ino)) != stamp:
                    remaining += 1
                    continue
                if busy and (st.st_dev, st.st_ino) in busy:
                    self.skipped.append({"path": prefix + name, "reason": "open for writing or locked"})
                    remaining += 1
                    continue
                if collect is not None:
                    collect.append((stamp, st.st_size, st.st_blocks * 512 if st.st_nlink == 1 else 0, st.st_dev, st.st_ino))
                    remaining += 1
                    continue
                if len(self.files) >= self.max_deletions:
                    self.capped = True
                    remaining += 1
                    continue
                if not check_mode:
                    try:
                        os.unlink(name, dir_fd=fd)
                    except FileNotFoundError:
                        continue  # gone already: someone else cleaned it
                    except OSError as exc:
                        self.error(prefix + name, exc)
                        remaining += 1
                        continue
                self.files.append(prefix + name)
                self.bytes_freed += st.st_size
        for name in subdirs:
            remaining -= self._walk_subdir(fd, prefix + name, name, device)
        return remaining

    def _walk_subdir(self, parent_fd, path, name, device):
        """Walk one subdirectory; return 1 when it was (or would be) removed as empty."""
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                self.error(path, exc)
            return 0
        try:
            st = os.fstat(fd)
            if st.st_dev != device:
                self.skipped.append({"path": path, "reason": "mount point (not crossed)"})
                return 0
            remaining = self._walk(fd, path, device)
        finally:
            os.close(fd)
        if remaining or not self.remove_empty_dirs or self.collect is not None:
            return 0
        if self.cutoff is not None and st[self.stamp_field] >= self.cutoff:
            return 0  # a fresh empty directory may be about to be used
        if not self.check_mode:
            try:
                os.rmdir(name, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:  # a file arrived meanwhile: keep it quietly
                    self.error(path, exc)
                return 0
        self.dirs_removed.append(path)
        return 1


def _budget_choice(candidates, args, roots):
    """Oldest first until the free-space or size target is met: {(dev, ino): stamp}."""
    candidates.sort()
    chosen = {}
    existing = [root for root in roots if os.path.isdir(root)]
    if args["min_free"] is not None and existing:
        unit, target = parse_free(args["min_free"])
        fs = os.statvfs(existing[0])
        free = fs.f_bavail * fs.f_frsize
        if unit == "percent":
            target = fs.f_blocks * fs.f_frsize * target / 100
        for stamp, _size, blocks, dev, ino in candidates:
            if free >= target:
                break
            chosen[(dev, ino)] = stamp
            free += blocks
    if args["max_size"] is not None:
        budget = parse_size(args["max_size"])
        total = sum(size for _stamp, size, _blocks, _dev, _ino in candidates)
        for stamp, size, _blocks, dev, ino in candidates:
            if total <= budget:
                break
            if (dev, ino) not in chosen:
                chosen[(dev, ino)] = stamp
                total -= size
    return chosen


def validate(args, source=None, prefix=""):
    """Check what the argument spec cannot; return the paths to walk."""

    def check(field, test, *values):
        try:
            return test(*values)
        except ValueError as exc:
            raise ConfigError(str(exc), field=prefix + field, source=source) from None

    if args["age"] is None and args["min_free"] is None and args["max_size"] is None:
        raise ConfigError("give at least one of age, min_free or max_size (nothing is deleted without a limit)", field=prefix + "age", source=source)
    for name, parse in (("max_size", parse_size), ("min_free", parse_free)):
        if args[name] is not None:
            check(name, parse, args[name])
    if args["max_deletions"] < 1:
        raise ConfigError("must be at least 1", field=prefix + "max_deletions", source=source)
    if not args["paths"]:
        raise ConfigError("must list at least one directory", field=prefix + "paths", source=source)
    return [check(f"paths[{index}]", check_root, path, args["allow_system_paths"]) for index, path in enumerate(args["paths"])]


def _check_job(args, settings=None):
    validate(args)


def clean(args, ctx):
    roots = validate(args)
    if args["min_free"] is not None and len({os.stat(root).st_dev for root in roots if os.path.isdir(root)}) > 1:
        raise ConfigError("min_free needs all paths on one filesystem; use one job per filesystem", field="min_free")
    cleaner = Cleaner(args, ctx.check_mode)
    if args["skip_busy"]:
        cleaner.busy = busy_files(roots)
    if args["min_free"] is not None or args["max_size"] is not None:
        cleaner.collect = []
        for root in roots:
            cleaner.clean_root(root)
        cleaner.chosen = _budget_choice(cleaner.collect, args, roots)
        cleaner.collect = None
        if not cleaner.chosen and not args["remove_empty_dirs"]:
            return _result(cleaner, ctx)
        cleaner.skipped = []  # the deleting pass below reports them again
        cleaner.errors = []
    for root in roots:
        cleaner.clean_root(root)
    return _result(cleaner, ctx)


def _result(cleaner, ctx):
    ctx.log("file_cleanup", deleted=len(cleaner.files), bytes_freed=cleaner.bytes_freed, errors=len(cleaner.errors), capped=cleaner.capped)
    return {
        "changed": bool(cleaner.files or cleaner.dirs_removed),
        "files": cleaner.files,
        "deleted": len(cleaner.files),
        "bytes_freed": cleaner.bytes_freed,
        "dirs_removed": cleaner.dirs_removed,
        "errors": cleaner.errors,
        "skipped": cleaner.skipped,
        "capped": cleaner.capped,
    }


FILE_CLEANUP = Task(name="file_cleanup", argument_spec=ARGUMENT_SPEC, run=clean, check=_check_job)
