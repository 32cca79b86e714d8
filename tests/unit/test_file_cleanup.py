"""file_cleanup on real directory trees: age, budget, safety rules, check mode, errors."""

import fcntl
import os
import subprocess
import sys
import time

import pytest
from caretaker.foundation import argspec
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.tasks import Context
from caretaker.hygiene.file_cleanup import FILE_CLEANUP

DAY = 86400


def run(check_mode=False, **params):
    args = argspec.validate(FILE_CLEANUP.argument_spec, params, source="test")
    return FILE_CLEANUP.run(args, Context(check_mode=check_mode))


def make(path, size=10, age_days=0, stamp="mtime"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if age_days:
        when = time.time() - age_days * DAY
        os.utime(path, (when, when))
    return path


def tree(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs mounted inside tmp_path: its own device, with free space we control."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_age_check_mode_predicts_exactly_then_apply_then_nothing_left(tmp_path):
    old = [make(tmp_path / "a.log", 100, 10), make(tmp_path / "sub" / "b.log", 50, 8)]
    make(tmp_path / "fresh.log", 70)
    make(tmp_path / "sub" / "c.log", 30, 3)
    before = tree(tmp_path)

    preview = run(check_mode=True, paths=[str(tmp_path)], age="7d")
    assert preview["changed"] is True
    assert sorted(preview["files"]) == sorted(map(str, old))
    assert preview["bytes_freed"] == 150
    assert tree(tmp_path) == before

    applied = run(paths=[str(tmp_path)], age="7d")
    assert sorted(applied["files"]) == sorted(preview["files"])
    assert applied["bytes_freed"] == 150 and applied["deleted"] == 2
    assert tree(tmp_path) == ["fresh.log", "sub", "sub/c.log"]

    again = run(paths=[str(tmp_path)], age="7d")
    assert again["changed"] is False and again["files"] == []


@pytest.mark.parametrize("stamp", ["atime", "mtime"])
def test_age_stamp_is_the_one_chosen(tmp_path, stamp):
    path = tmp_path / "f"
    path.write_text("x")
    now = time.time()
    old = now - 10 * DAY
    os.utime(path, (old, now) if stamp == "atime" else (now, old))
    assert run(paths=[str(tmp_path)], age="7d", age_stamp=stamp)["files"] == [str(path)]


def test_ctime_cannot_be_faked_so_a_fresh_file_stays(tmp_path):
    make(tmp_path / "f", age_days=30)  # mtime is old, ctime is now
    assert run(paths=[str(tmp_path)], age="1d", age_stamp="ctime")["files"] == []


def test_patterns_and_excludes_and_excluded_directories_are_not_entered(tmp_path):
    make(tmp_path / "a.tmp", age_days=9)
    make(tmp_path / "keep.tmp", age_days=9)
    make(tmp_path / "b.log", age_days=9)
    make(tmp_path / "cache" / "c.tmp", age_days=9)
    make(tmp_path / "deep" / "d.tmp", age_days=9)
    result = run(paths=[str(tmp_path)], age="1d", patterns=["*.tmp"], excludes=["keep.*", "cache"])
    assert sorted(result["files"]) == [str(tmp_path / "a.tmp"), str(tmp_path / "deep" / "d.tmp")]
    assert (tmp_path / "cache" / "c.tmp").exists() and (tmp_path / "b.log").exists()


def test_recurse_false_stays_at_top(tmp_path):
    make(tmp_path / "a", age_days=9)
    make(tmp_path / "sub" / "b", age_days=9)
    assert run(paths=[str(tmp_path)], age="1d", recurse=False)["files"] == [str(tmp_path / "a")]


def test_symlinks_are_never_followed_nor_deleted(tmp_path):
    outside = tmp_path / "outside"
    make(outside / "precious", age_days=30)
    root = tmp_path / "root"
    root.mkdir()
    (root / "dirlink").symlink_to(outside)
    (root / "filelink").symlink_to(outside / "precious")
    os.utime(root / "filelink", (1, 1), follow_symlinks=False)
    (tmp_path / "rootlink").symlink_to(root)

    result = run(paths=[str(root)], age="1d")
    assert result["files"] == []
    assert (outside / "precious").exists() and (root / "dirlink").is_symlink() and (root / "filelink").is_symlink()

    via_link = run(paths=[str(tmp_path / "rootlink")], age="1d")
    assert via_link["files"] == []
    assert via_link["skipped"] == [{"path": str(tmp_path / "rootlink"), "reason": "not a directory (symlinks are not followed)"}]


def test_mount_points_are_not_crossed(tmp_path, tmpfs):
    make(tmpfs / "other-fs", age_days=30)
    make(tmp_path / "here", age_days=30)
    result = run(paths=[str(tmp_path)], age="1d")
    assert result["files"] == [str(tmp_path / "here")]
    assert {"path": str(tmpfs), "reason": "mount point (not crossed)"} in result["skipped"]
    assert (tmpfs / "other-fs").exists()


def test_files_open_for_writing_or_locked_are_skipped(tmp_path):
    writing = make(tmp_path / "writing.log", age_days=30)
    locked = make(tmp_path / "locked.db", age_days=30)
    reading = make(tmp_path / "reading.log", age_days=30)
    idle = make(tmp_path / "idle.log", age_days=30)
    # another process holds them, as a real application would
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         f"w = open({str(writing)!r}, 'a')\n"
         f"r = open({str(reading)!r})\n"
         f"l = open({str(locked)!r})\n"
         "fcntl.flock(l, fcntl.LOCK_SH)\n"
         "print('ready', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run(paths=[str(tmp_path)], age="1d")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(result["files"]) == sorted([str(reading), str(idle)])
    skipped = {entry["path"] for entry in result["skipped"] if entry["reason"] == "open for writing or locked"}
    assert skipped == {str(writing), str(locked)}
    assert writing.exists() and locked.exists()


def test_posix_record_lock_is_seen_too(tmp_path):
    locked = make(tmp_path / "queue.db", age_days=30)
    with open(locked, "r+b") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        result = run(paths=[str(tmp_path)], age="1d")
    assert result["files"] == [] and locked.exists()


def test_permission_errors_are_reported_and_the_run_goes_on(tmp_path):
    stuck = tmp_path / "stuck"
    make(stuck / "cannot", age_days=30)
    make(tmp_path / "can", age_days=30)
    subprocess.run(["chattr", "+i", str(stuck)], check=True)
    try:
        result = run(paths=[str(tmp_path)], age="1d")
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert result["files"] == [str(tmp_path / "can")]
    assert result["errors"] == [{"path": str(stuck / "cannot"), "error": "Operation not permitted", "errno": 1}]
    assert (stuck / "cannot").exists()


def test_deletions_are_capped_per_run(tmp_path):
    for index in range(5):
        make(tmp_path / f"f{index}", age_days=30)
    result = run(paths=[str(tmp_path)], age="1d", max_deletions=2)
    assert result["deleted"] == 2 and result["capped"] is True
    assert len(list(tmp_path.iterdir())) == 3


def test_empty_directories_old_ones_removed_roots_and_fresh_ones_kept(tmp_path):
    make(tmp_path / "a" / "b" / "old", age_days=30)
    make(tmp_path / "keepme" / "new")
    (tmp_path / "fresh-empty").mkdir()
    for directory in ("a/b", "a"):
        os.utime(tmp_path / directory, (time.time() - 30 * DAY,) * 2)
    preview = run(check_mode=True, paths=[str(tmp_path)], age="7d", remove_empty_dirs=True)
    assert preview["dirs_removed"] == [str(tmp_path / "a" / "b"), str(tmp_path / "a")]
    applied = run(paths=[str(tmp_path)], age="7d", remove_empty_dirs=True)
    assert applied["dirs_removed"] == preview["dirs_removed"]
    assert tree(tmp_path) == ["fresh-empty", "keepme", "keepme/new"]


def test_size_budget_deletes_oldest_first_until_met(tmp_path):
    for index, age in enumerate([5, 4, 3, 2, 1]):
        make(tmp_path / f"f{index}", size=1000, age_days=age)
    preview = run(check_mode=True, paths=[str(tmp_path)], max_size="2500")
    assert sorted(preview["files"]) == [str(tmp_path / "f0"), str(tmp_path / "f1"), str(tmp_path / "f2")]
    assert preview["bytes_freed"] == 3000
    applied = run(paths=[str(tmp_path)], max_size="2500")
    assert applied["files"] == preview["files"]
    assert tree(tmp_path) == ["f3", "f4"]
    assert run(paths=[str(tmp_path)], max_size="2500")["changed"] is False


def test_min_free_deletes_oldest_until_the_filesystem_has_room(tmpfs):
    for index, age in enumerate([5, 4, 3, 2, 1]):
        make(tmpfs / f"f{index}", size=1024 * 1024, age_days=age)  # 5 MiB of an 8 MiB tmpfs
    result = run(paths=[str(tmpfs)], min_free="70%")  # 3 MiB free, 5.6 MiB wanted: the three oldest go
    assert sorted(result["files"]) == [str(tmpfs / "f0"), str(tmpfs / "f1"), str(tmpfs / "f2")]
    fs = os.statvfs(tmpfs)
    assert fs.f_bavail >= fs.f_blocks * 0.7
    assert run(paths=[str(tmpfs)], min_free="70%")["changed"] is False


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"paths": ["/"], "age": "1d"}, "paths[0]", "refusing to clean the system directory /"),
        ({"paths": ["/tmp", "/etc"], "age": "1d"}, "paths[1]", "system directory /etc"),
        ({"paths": ["/usr/share/doc"], "age": "1d"}, "paths[0]", "system directory"),
        ({"paths": ["relative/dir"], "age": "1d"}, "paths[0]", "must be an absolute path"),
        ({"paths": ["/tmp"]}, "age", "give at least one of age"),
        ({"paths": ["/tmp"], "age": "soon"}, "age", "is not an age"),
        ({"paths": ["/tmp"], "min_free": "120%"}, "min_free", "percentage"),
        ({"paths": ["/tmp"], "max_size": "lots"}, "max_size", "is not a size"),
        ({"paths": ["/tmp"], "age": "1d", "max_deletions": 0}, "max_deletions", "at least 1"),
        ({"paths": ["/tmp"], "age": "1d", "age_stamp": "birth"}, "age_stamp", "must be one of"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(tmp_path, params, field, words):
    make(tmp_path / "old", age_days=30)
    with pytest.raises(ConfigError) as caught:
        run(**params)
    assert caught.value.field == field
    assert words in caught.value.message
    assert (tmp_path / "old").exists()


def test_a_link_resolving_into_a_system_directory_is_refused(tmp_path):
    (tmp_path / "sneaky").symlink_to("/etc")
    with pytest.raises(ConfigError, match=r"resolves to /etc"):
        run(paths=[str(tmp_path / "sneaky")], age="1d")


def test_system_directory_allowed_when_asked(tmp_path):
    # check mode on /etc with a pattern nothing matches: allowed, and harmless
    result = run(check_mode=True, paths=["/etc"], age="1d", patterns=["*.caretaker-test-none"], allow_system_paths=True)
    assert result["changed"] is False and result["errors"] == []


def test_budget_mode_on_a_missing_directory_reports_it(tmp_path):
    result = run(paths=[str(tmp_path / "absent")], min_free="10%")
    assert result["changed"] is False
    assert result["skipped"] == [{"path": str(tmp_path / "absent"), "reason": "does not exist"}]
