"""Releases of an application on one host: prepare, switch, confirm, revert, roll back, prune.

    ROOT/releases/RELEASE    one directory per release, complete before it is named so
    ROOT/current             a symlink to releases/RELEASE, replaced by renaming a new link over it
    ROOT/shared/PATH         configuration, uploads, logs: linked into every release

A release is unpacked from a tarball whose sha256 is checked first, or checked out from a
git ref, into a hidden directory; shared paths are linked and the build command runs there;
only then is it renamed into place. Nothing switches until every step passed. The journal
(journal.py, in the ledger) says which release each switch replaced, so a revert or a rollback never
guesses from file times.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import time
import uuid

from ..foundation.errors import CaretakerError, ConfigError
from ..foundation.tasks import Task
from .journal import SWITCHED, check_name, journal

RELEASE_SPEC = {
    "app": {"type": "str", "required": True},
    "root": {"type": "path", "required": True},
    "state": {"type": "str", "default": "current", "choices": ["prepared", "current", "confirmed", "reverted", "rolled_back"]},
    "release": {"type": "str"},
    "deploy_id": {"type": "str"},
    "artifact": {"type": "path"},
    "sha256": {"type": "str"},
    "strip_components": {"type": "int", "default": 0},
    "git_repo": {"type": "str"},
    "git_ref": {"type": "str"},
    "shared": {"type": "list", "elements": "str", "default": []},
    "build_command": {"type": "list", "elements": "str", "default": []},
    "build_env": {"type": "dict", "default": {}},
    "build_timeout": {"type": "int", "default": 1800},
    "keep": {"type": "int", "default": 5},
    "reason": {"type": "str"},
}

CHUNK = 1 << 20


def paths(root):
    return os.path.join(root, "releases"), os.path.join(root, "current"), os.path.join(root, "shared")


def current_release(root):
    """The release `current` points to, or None."""
    try:
        target = os.readlink(paths(root)[1])
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CaretakerError(f"{paths(root)[1]} is not a symlink: {exc.strerror}") from None
    return os.path.basename(target.rstrip("/"))


def switch(root, release):
    """Point `current` at release in one rename: a reader sees the old link or the new, never none."""
    current = paths(root)[1]
    temporary = f"{current}.{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.join("releases", release), temporary)
    try:
        os.replace(temporary, current)
    except OSError:
        os.unlink(temporary)
        raise
    _fsync_dir(root)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source(args):
    """(source text, expected digest or None) from the options, checked for sense."""
    if args["artifact"] and args["git_repo"]:
        raise ConfigError("name either artifact or git_repo, not both", field="artifact")
    if args["artifact"]:
        expected = (args["sha256"] or "").lower()
        if len(expected) != 64 or any(char not in "0123456789abcdef" for char in expected):
            raise ConfigError("must be the artifact's sha256: 64 hexadecimal digits", field="sha256")
        return f"artifact:sha256:{expected}", expected
    if args["git_repo"]:
        if not args["git_ref"]:
            raise ConfigError("is required with git_repo", field="git_ref")
        return f"git:{args['git_repo']}@{args['git_ref']}", None
    raise ConfigError("name the release's source: artifact (with sha256) or git_repo (with git_ref)", field="artifact")


def _check_artifact(args, expected):
    try:
        actual = sha256_of(args["artifact"])
    except OSError as exc:
        raise ConfigError(f"cannot read {args['artifact']}: {exc.strerror}", field="artifact") from None
    if actual != expected:
        raise ConfigError(f"{args['artifact']} has sha256 {actual}, expected {expected}: nothing was unpacked", field="sha256")


def _members(archive, strip):
    """The archive's members with strip leading path parts removed; refuses links and paths leaving the release."""
    for member in archive.getmembers():
        parts = [part for part in member.name.split("/") if part not in ("", ".")]
        if len(parts) <= strip:
            continue
        name = "/".join(parts[strip:])
        if member.name.startswith("/") or ".." in parts or member.islnk() or member.isdev():
            raise ConfigError(f"refuses member {member.name!r}: absolute, outside the release, a hard link or a device", field="artifact")
        if member.issym() and (member.linkname.startswith("/") or ".." in member.linkname.split("/")):
            raise ConfigError(f"refuses symlink {member.name!r} -> {member.linkname!r}: it leaves the release", field="artifact")
        member.name = name
        member.mode &= 0o755 if member.isdir() else 0o775
        yield member


def _unpack(args, directory):
    try:
        with tarfile.open(args["artifact"]) as archive:
            members = list(_members(archive, args["strip_components"]))
            if not members:
                raise ConfigError(f"holds nothing below {args['strip_components']} leading path parts", field="strip_components")
            extract = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
            archive.extractall(directory, members=members, numeric_owner=True, **extract)  # noqa: S202 - members checked above
    except tarfile.TarError as exc:
        raise ConfigError(f"is not a readable tarball: {exc}", field="artifact") from None


def _git(args, directory):
    def git(*argv, cwd=None):
        done = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, timeout=args["build_timeout"], check=False)
        if done.returncode:
            raise ConfigError(f"git {argv[0]} failed: {done.stderr.strip()[-500:]}", field="git_repo" if argv[0] == "clone" else "git_ref")
        return done.stdout.strip()

    git("clone", "--quiet", "--no-checkout", args["git_repo"], directory)
    git("checkout", "--quiet", "--detach", args["git_ref"], cwd=directory)
    return git("rev-parse", "HEAD", cwd=directory)


def _link_shared(args, directory, shared_root):
    for index, relative in enumerate(args["shared"]):
        parts = [part for part in relative.split("/") if part not in ("", ".")]
        if not parts or ".." in parts or relative.startswith("/"):
            raise ConfigError(f"must be a path inside the release, got {relative!r}", field=f"shared[{index}]")
        relative = "/".join(parts)
        target = os.path.join(shared_root, relative)
        if not os.path.lexists(target):
            os.makedirs(target, exist_ok=True)
        inside = os.path.join(directory, relative)
        if os.path.isdir(inside) and not os.path.islink(inside):
            shutil.rmtree(inside)
        elif os.path.lexists(inside):
            os.unlink(inside)
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        os.symlink(target, inside)


def _build(args, directory):
    if not args["build_command"]:
        return None
    env = {**os.environ, **{key: str(value) for key, value in args["build_env"].items()}, "RELEASE": args["release"], "RELEASE_DIR": directory}
    try:
        done = subprocess.run(args["build_command"], cwd=directory, env=env, capture_output=True, text=True,
                              timeout=args["build_timeout"], check=False)
    except FileNotFoundError:
        raise ConfigError(f"{args['build_command'][0]!r} was not found", field="build_command") from None
    except subprocess.TimeoutExpired:
        raise CaretakerError(f"build_command ran longer than {args['build_timeout']} s; nothing switched") from None
    if done.returncode:
        tail = (done.stdout + done.stderr).strip()[-1500:]
        raise CaretakerError(f"build_command exited with status {done.returncode}; nothing switched: {tail}")
    return (done.stdout + done.stderr).strip()[-1500:]


def prepare(args, ctx, ledger):
    """Make releases/RELEASE complete; returns (changed, detail). Nothing switches here."""
    source, expected = _source(args)
    releases, shared_root = paths(args["root"])[0], paths(args["root"])[2]
    directory = os.path.join(releases, args["release"])
    if args["artifact"]:
        _check_artifact(args, expected)  # first, and in check mode too: a bad artifact fails the dry run
    known = ledger.prepared_release(args["app"], args["release"])
    if os.path.isdir(directory):
        if known and known["source"] == source:
            return False, None
        why = f"was prepared from {known['source']}" if known else "was not prepared by caretaker"
        raise ConfigError(f"{directory} exists and {why}, not {source}: name a new release", field="release")
    if ctx.check_mode:
        return True, None
    os.makedirs(releases, mode=0o755, exist_ok=True)
    os.makedirs(shared_root, mode=0o755, exist_ok=True)
    partial = os.path.join(releases, f".{args['release']}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # what a killed run left
    try:
        if args["artifact"]:
            os.makedirs(partial)
            _unpack(args, partial)
            digest = expected
        else:
            digest = _git(args, partial)
        _link_shared(args, partial, shared_root)
        output = _build(args, partial)
        os.rename(partial, directory)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    ledger.add_release(args["app"], args["release"], source, digest)
    ctx.log("release_prepared", app=args["app"], release=args["release"], source=source)
    return True, output


def _need(args, *names):
    for name in names:
        if not args.get(name):
            raise ConfigError(f"is required with state={args['state']}", field=name)
    if args.get("release"):
        check_name(args["release"], "release")


def _switched_row(ledger, args):
    for action in ("deploy", "rollback"):
        row = ledger.deploy_row(args["deploy_id"], args["app"], action)
        if row and row["outcome"] in SWITCHED:
            return row
    return None


def prune(args, ledger, protect):
    """Delete the oldest prepared releases beyond keep; never one in protect."""
    releases_dir = paths(args["root"])[0]
    known = [name for name in ledger.prepared_releases(args["app"]) if os.path.isdir(os.path.join(releases_dir, name))]
    removable = [name for name in known if name not in protect]
    excess = max(0, len(known) - max(args["keep"], 1))
    removed = []
    for name in removable[:excess]:
        shutil.rmtree(os.path.join(releases_dir, name))
        ledger.forget_release(args["app"], name)
        removed.append(name)
    return removed


def _release(args, ctx):
    if args["keep"] < 1:
        raise ConfigError(f"must be at least 1, got {args['keep']}", field="keep")
    check_name(args["app"], "app")
    root, state, app = args["root"], args["state"], args["app"]
    result = {"changed": False, "app": app, "root": root, "state": state}
    with journal(ctx.settings) as ledger:
        before = current_release(root)
        result.update(current=before, previous=None)
        if state == "prepared":
            _need(args, "release")
            result["changed"], result["build_output"] = prepare(args, ctx, ledger)
            return result
        if state == "current":
            _need(args, "release", "deploy_id")
            result["changed"], result["build_output"] = prepare(args, ctx, ledger)
            if before == args["release"]:
                return result
            result.update(changed=True, current=args["release"], previous=before)
            if not ctx.check_mode:
                ledger.record_deploy(args["deploy_id"], app, "deploy", release=args["release"], previous=before)
                switch(root, args["release"])
                ledger.record_deploy(args["deploy_id"], app, "deploy", outcome="switched")
                ctx.log("switched", app=app, release=args["release"], previous=before)
            result["diff"] = {"before": {"current": before}, "after": {"current": args["release"]}}
            return result
        if state == "confirmed":
            _need(args, "deploy_id")
            row = _switched_row(ledger, args)
            if row and row["outcome"] == "switched":
                result["changed"] = True
                if not ctx.check_mode:
                    ledger.record_deploy(args["deploy_id"], app, row["action"], outcome="ok", ended=time.time())
            protect = {before, ledger.rollback_target(app, before) if before else None, row["previous"] if row else None}
            result["pruned"] = [] if ctx.check_mode else prune(args, ledger, protect)
            result["changed"] = result["changed"] or bool(result["pruned"])
            return result
        if state == "reverted":
            _need(args, "deploy_id")
            row = _switched_row(ledger, args)
            if row is None:
                return result
            target = row["previous"]
            result.update(changed=True, current=target, previous=before, reverted_from=row["release"])
            if not ctx.check_mode:
                if target:
                    switch(root, target)
                else:
                    os.unlink(paths(root)[1])  # this deploy was the first: there is nothing to go back to
                ledger.record_deploy(args["deploy_id"], app, row["action"], outcome="rolled_back", ended=time.time(),
                                     detail=args["reason"] or "reverted with the fleet")
                ctx.log("reverted", app=app, release=target, reverted_from=row["release"])
            result["diff"] = {"before": {"current": before}, "after": {"current": target}}
            return result
        # rolled_back: to the release the journal says the current one replaced
        _need(args, "deploy_id")
        if before is None:
            raise ConfigError(f"{root}/current does not exist: nothing was deployed", field="root")
        target = args["release"] or ledger.rollback_target(app, before)
        if not target:
            raise ConfigError(f"the journal names no release before {before} for {app!r}; name one", field="release")
        if not os.path.isdir(os.path.join(paths(root)[0], target)):
            raise ConfigError(f"release {target} is not on this host (pruned or never prepared)", field="release")
        existing = ledger.deploy_row(args["deploy_id"], app, "rollback")
        if target == before or existing:
            return result
        result.update(changed=True, current=target, previous=before)
        if not ctx.check_mode:
            ledger.record_deploy(args["deploy_id"], app, "rollback", release=target, previous=before)
            switch(root, target)
            ledger.record_deploy(args["deploy_id"], app, "rollback", outcome="switched")
            ctx.log("rolled_back", app=app, release=target, previous=before)
        result["diff"] = {"before": {"current": before}, "after": {"current": target}}
        return result


DEPLOY_RELEASE = Task(name="deploy_release", argument_spec=RELEASE_SPEC, run=_release)
