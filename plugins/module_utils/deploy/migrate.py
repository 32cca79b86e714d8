"""deploy_migrate: an application's migrations, once, behind a verified backup.

On one host, in the new release, before any host switches:

1. take a PostgreSQL session advisory lock by polling pg_try_advisory_lock: a waiting
   runner holds no lock request in the server's queue, so it can never deadlock the
   holder's CREATE INDEX CONCURRENTLY (which waits for every older transaction);
2. ask the app's own check command whether migrations are pending (exit 0: none, 1: some),
   under the lock, so a second runner that waited finds nothing left to do;
3. run the migration linter command, when there is one;
4. the backup gate: a pg_backup of the database, then its stored bytes checked against
   the manifest's sha256 and its table of contents read by `pg_restore --list`. No verified
   backup, no migration;
5. run the migrate command with PGOPTIONS carrying lock_timeout and statement_timeout,
   retried when it failed on a lock timeout, and record the schema version before and after.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time

from ..foundation import argspec
from ..foundation.errors import CaretakerError, ConfigError, TransientError
from ..foundation.tasks import Task
from ..lib import pg
from .journal import check_name, journal

MIGRATE_SPEC = {
    "app": {"type": "str", "required": True},
    "deploy_id": {"type": "str", "required": True},
    "release": {"type": "str"},
    "chdir": {"type": "path", "required": True},
    "migrate_command": {"type": "list", "elements": "str", "required": True},
    "pending_command": {"type": "list", "elements": "str", "required": True},
    "version_command": {"type": "list", "elements": "str", "default": []},
    "lint_command": {"type": "list", "elements": "str", "default": []},
    "environment": {"type": "dict", "default": {}},
    **pg.CONNECTION_SPEC,
    "lock_key": {"type": "int", "no_log": False},
    "lock_wait": {"type": "float", "default": 600.0},
    "poll_interval": {"type": "float", "default": 1.0},
    "lock_timeout": {"type": "str", "default": "5s"},
    "statement_timeout": {"type": "str", "default": "15min"},
    "retries": {"type": "int", "default": 3},
    "retry_delay": {"type": "float", "default": 5.0},
    "command_timeout": {"type": "int", "default": 3600},
    "backup": {"type": "dict"},
    "backup_password": {"type": "str", "no_log": True},
    "require_backup": {"type": "bool", "default": True},
}

LOCK_TIMEOUT_WORDS = ("lock timeout", "55P03")


def lock_key(args):
    """The advisory lock's key: given, or a stable 63-bit number from the application's name."""
    if args["lock_key"] is not None:
        return args["lock_key"]
    digest = hashlib.sha256(f"caretaker-migrate:{args['app']}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _env(args):
    env = {**os.environ, **{key: str(value) for key, value in args["environment"].items()}}
    options = f"-c lock_timeout={args['lock_timeout']} -c statement_timeout={args['statement_timeout']}"
    env["PGOPTIONS"] = f"{env['PGOPTIONS']} {options}" if env.get("PGOPTIONS") else options
    return env


def _run(args, field, argv, env):
    try:
        done = subprocess.run(argv, cwd=args["chdir"], env=env, capture_output=True, text=True,
                              timeout=args["command_timeout"], check=False)
    except FileNotFoundError:
        raise ConfigError(f"{argv[0]!r} was not found", field=field) from None
    except NotADirectoryError:
        raise ConfigError(f"{args['chdir']} is not a directory", field="chdir") from None
    except subprocess.TimeoutExpired:
        raise CaretakerError(f"{field} ran longer than {args['command_timeout']} s") from None
    return done.returncode, (done.stdout + done.stderr).strip()


def _pending(args, env):
    code, output = _run(args, "pending_command", args["pending_command"], env)
    if code not in (0, 1):
        raise CaretakerError(f"pending_command exited with status {code} (0: nothing pending, 1: pending): {output[-1000:]}")
    return code == 1


def _version(args, env):
    if not args["version_command"]:
        return None
    code, output = _run(args, "version_command", args["version_command"], env)
    if code:
        raise CaretakerError(f"version_command exited with status {code}: {output[-1000:]}")
    return output.splitlines()[-1].strip() if output else ""


def _acquire(conn, key, args, ctx):
    deadline = time.monotonic() + args["lock_wait"]
    waited = False
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        if time.monotonic() >= deadline:
            holder = conn.execute(
                """SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND l.granted
                      AND ((l.classid::bigint << 32) | l.objid::bigint) = %s""",
                (key,),
            ).fetchone()
            who = "another session"
            if holder:
                who = f"backend {holder[0]} ({holder[1] or 'no application name'} from {holder[2] or 'the local socket'}, since {holder[3]})"
            raise TransientError(f"the migration lock of {args['app']!r} is held by {who}; waited {args['lock_wait']:.0f} s")
        if not waited:
            ctx.log("migration_lock_wait", app=args["app"])
            waited = True
        time.sleep(args["poll_interval"])


def verify_backup(backup_args, backup_id):
    """Checksum and table of contents of a stored backup; raises when either fails."""
    import zstandard

    from ..backup.pg_backup import Catalog, _identities, manifest_of, pg_program, verify_stored
    from ..lib import age
    from ..lib.backup_store import open_store

    store = open_store(backup_args)
    catalog = Catalog(store, backup_args["database"])
    document = catalog.read()
    manifest = manifest_of(document["backups"][catalog.resolve(document, backup_id)])
    identities = _identities(backup_args, manifest)
    verify_stored(store, manifest, identities)
    pg_restore = pg_program(backup_args, "pg_restore", int(manifest.get("server_version") or 0))
    # pg_restore's answers go to files, so a long listing never blocks the pipe we feed
    with tempfile.TemporaryFile() as listing_file, tempfile.TemporaryFile() as errors_file:
        proc = subprocess.Popen([pg_restore, "--list"], stdin=subprocess.PIPE, stdout=listing_file, stderr=errors_file)
        reader = store.open_reader(manifest["key"])
        try:
            read = reader.read
            chunks = age.Decryptor(read, identities).chunks() if identities is not None else iter(lambda: read(1 << 20), b"")
            decompressor = zstandard.ZstdDecompressor().decompressobj()
            try:
                for chunk in chunks:
                    proc.stdin.write(decompressor.decompress(chunk))
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=600)
        finally:
            reader.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        listing_file.seek(0)
        errors_file.seek(0)
        listing, errors = listing_file.read(), errors_file.read()
    text = listing.decode(errors="replace")
    entries = [line for line in text.splitlines() if line and not line.startswith(";")]
    if proc.returncode or "; Archive created at" not in text:  # an empty database lists a header and no entry
        raise CaretakerError(f"backup {backup_id}: pg_restore --list could not read it (status {proc.returncode}): "
                             f"{errors.decode(errors='replace').strip()[-500:]}")
    return {"id": backup_id, "sha256": manifest["sha256"], "size": manifest["size"], "toc_entries": len(entries)}


def _backup_args(args):
    from ..backup.pg_backup import BACKUP_SPEC

    given = {"prune": False, **args["backup"]}
    if args["backup_password"]:
        given["pg_password"] = args["backup_password"]
    return argspec.validate(BACKUP_SPEC, given, prefix="backup.")


def _backup_gate(args, ctx):
    from ..backup.pg_backup import PG_BACKUP

    if not args["backup"]:
        if args["require_backup"]:
            raise ConfigError("is required: migrations are pending and no migration runs without a verified backup"
                              " (set require_backup false to migrate without one)", field="backup")
        return None
    backup_args = _backup_args(args)
    outcome = PG_BACKUP.run(backup_args, ctx)
    backup_id = outcome.get("id") or outcome.get("backup_id")
    if not backup_id:
        raise CaretakerError("the backup gate's pg_backup returned no backup id; no migration ran")
    try:
        verified = verify_backup(backup_args, backup_id)
    except CaretakerError as exc:
        raise CaretakerError(f"backup gate: {exc.message}; no migration ran") from None
    ctx.log("backup_verified", **verified)
    return verified


def _migrate_with_retries(args, env, ctx):
    for attempt in range(1, args["retries"] + 2):
        code, output = _run(args, "migrate_command", args["migrate_command"], env)
        if code == 0:
            return attempt, output
        if attempt <= args["retries"] and any(word in output for word in LOCK_TIMEOUT_WORDS):
            ctx.log("migrate_lock_timeout", attempt=attempt)
            time.sleep(args["retry_delay"] * attempt)
            continue
        raise CaretakerError(f"migrate_command exited with status {code} (attempt {attempt}): {output[-1500:]}")
    raise AssertionError("unreachable")


def _migrate(args, ctx):
    check_name(args["app"], "app")
    for field in ("migrate_command", "pending_command"):
        if not args[field]:
            raise ConfigError("must be a non-empty argument list", field=field)
    if args["backup"] is not None:
        _backup_args(args)  # a bad backup option stops the run before the lock is taken
    env = _env(args)
    result = {"changed": False, "app": args["app"], "pending": False, "backup": None, "attempts": 0,
              "schema_before": None, "schema_after": None, "waited": 0.0}
    conn = pg.connect(args)
    try:
        started = time.monotonic()
        _acquire(conn, lock_key(args), args, ctx)
        result["waited"] = round(time.monotonic() - started, 3)
        try:
            result["pending"] = _pending(args, env)
            result["schema_before"] = result["schema_after"] = _version(args, env)
            if not result["pending"] or ctx.check_mode:
                result["changed"] = result["pending"]
                return result
            if args["lint_command"]:
                code, output = _run(args, "lint_command", args["lint_command"], env)
                if code:
                    raise CaretakerError(f"lint_command refused the pending migrations (status {code}); nothing ran: {output[-1500:]}")
            with journal(ctx.settings) as ledger:
                ledger.record_deploy(args["deploy_id"], args["app"], "migrate", release=args["release"], schema_before=result["schema_before"])
                try:
                    result["backup"] = _backup_gate(args, ctx)
                    ledger.record_deploy(args["deploy_id"], args["app"], "migrate", backup_id=(result["backup"] or {}).get("id"))
                    result["attempts"], result["output"] = _migrate_with_retries(args, env, ctx)
                    result["schema_after"] = _version(args, env)
                    if _pending(args, env):
                        raise CaretakerError("migrate_command succeeded but pending_command still reports pending migrations")
                except CaretakerError as exc:
                    ledger.record_deploy(args["deploy_id"], args["app"], "migrate", outcome="failed", ended=time.time(), detail=exc.message[:2000])
                    raise
                ledger.record_deploy(args["deploy_id"], args["app"], "migrate", outcome="ok", ended=time.time(), schema_after=result["schema_after"])
            result["changed"] = True
            ctx.log("migrated", app=args["app"], schema_before=result["schema_before"], schema_after=result["schema_after"])
            return result
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(args),))
    finally:
        conn.close()


DEPLOY_MIGRATE = Task(name="deploy_migrate", argument_spec=MIGRATE_SPEC, run=_migrate)
