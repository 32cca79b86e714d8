"""PostgreSQL backups that provably restore: dump, restore, restore drill, prune, info.

A backup streams `pg_dump -Fc -Z0` through zstd and, when recipients are set, age
encryption, into a store (backup_store), with no temporary file. Row counts come from the
same snapshot as the dump (pg_export_snapshot + pg_dump --snapshot). Layout under the prefix:

    <prefix><database>/<id>.dump.zst[.age]   the stored bytes: the only object per backup
    <prefix><database>/catalog.json          every backup's manifest and last drill

The manifest goes into the catalog last: a backup exists only when its manifest does.
One catalog instead of an object per manifest lets prune read every manifest in one
request and delete 1,000 backups per request. The catalog also names what must go:
`pending` the runs under way (any left when the next run starts were killed),
`abandoned` and `deleted` keys whose bytes are still to be removed; every change to the
catalog removes those first, so nothing a failed run or a failed delete left stays behind.

Restores read the stored bytes twice: first to check size, sha256 and that the identity
opens the age header, and only then to feed pg_restore, so a damaged backup or a wrong key
never touches the target database.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import re
import secrets
import socket
import subprocess
import threading
import time

from ..foundation import metrics
from ..foundation.errors import CaretakerError, ConfigError, TransientError
from ..foundation.tasks import Task
from ..foundation.timestamps import iso, parse_iso
from ..foundation.version import VERSION
from ..lib import age, pg
from ..lib.backup_store import STORE_SPEC, open_store
from .retention import POLICY_SPEC, Backup, check_policy, plan

READ_SIZE = 1024 * 1024
# zstd's own job size with worker threads is 8 MiB or more, each held twice per worker;
# 2 MiB jobs keep a worker to a few MiB and compress as well on dump data.
COMPRESSION_JOB_SIZE = 2 * 1024 * 1024
MANIFEST_FORMAT = 1
CATALOG_FORMAT = 2
ID_PATTERN = re.compile(r"^(\d{8}T\d{9})Z-[0-9a-f]{6}$")  # UTC to the millisecond, then random

PG_SPEC = {
    "database": {"type": "str", "required": True},
    "pg_host": {"type": "str"},
    "pg_port": {"type": "int", "default": 5432},
    "pg_user": {"type": "str"},
    "pg_password": {"type": "str", "no_log": True},
    "pg_passfile": {"type": "path"},
    "pg_bin_dir": {"type": "path"},
    "connect_timeout": {"type": "int", "default": 10},
}

BACKUP_SPEC = {
    **PG_SPEC,
    **STORE_SPEC,
    **POLICY_SPEC,
    "recipients": {"type": "list", "elements": "str", "default": []},
    "compression_level": {"type": "int", "default": 3},
    "compression_threads": {"type": "int", "default": 2},
    "prune": {"type": "bool", "default": True},
}

RESTORE_SPEC = {
    **PG_SPEC,
    **STORE_SPEC,
    "backup": {"type": "str", "default": "latest"},
    "target": {"type": "str", "required": True},
    "replace": {"type": "bool", "default": False},
    "identity_file": {"type": "path"},
    "no_owner": {"type": "bool", "default": False},
}

DRILL_SPEC = {**PG_SPEC, **STORE_SPEC, "identity_file": {"type": "path"}, "no_owner": {"type": "bool", "default": False}}
PRUNE_SPEC = {"database": {"type": "str", "required": True}, **STORE_SPEC, **POLICY_SPEC}
INFO_SPEC = {"database": {"type": "str", "required": True}, **STORE_SPEC, "backup": {"type": "str"}}


def _now():
    return datetime.datetime.now(datetime.UTC)


def new_backup_id(moment: datetime.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z-" + secrets.token_hex(3)


def backup_time(backup_id: str) -> datetime.datetime:
    stamp = ID_PATTERN.match(backup_id).group(1)
    return datetime.datetime.strptime(stamp + "000", "%Y%m%dT%H%M%S%f").replace(tzinfo=datetime.UTC)


# ------------------------------------------------------------------------ catalog


class Catalog:
    """The backups of one database in one store: the catalog document and the keys it names."""

    def __init__(self, store, database: str):
        if not database or "/" in database or database.startswith("."):
            raise ConfigError(f"{database!r} cannot name a backup folder (no '/' and no leading '.')", field="database")
        self.store = store
        self.database = database
        self.prefix = f"{store.prefix}{database}/"
        self.key = f"{self.prefix}catalog.json"

    def data_key(self, backup_id, encrypted):
        return f"{self.prefix}{backup_id}.dump.zst" + (".age" if encrypted else "")

    def _complete(self, document):
        document = document or {}
        if document.get("format", CATALOG_FORMAT) != CATALOG_FORMAT:
            raise CaretakerError(f"{self.store.describe(self.key)} has format {document['format']}; this caretaker reads format {CATALOG_FORMAT}")
        return {"format": CATALOG_FORMAT, "database": self.database, "backups": {}, "pending": {}, "abandoned": [], "deleted": [], **document}

    def read(self):
        return self._complete(self.store.get_json(self.key))

    def update(self, change):
        """Apply change(document) -> bool (whether it changed anything), after removing the leftovers
        the catalog names. May run more than once when another writer got in between."""

        def apply(document):
            document = self._complete(document)
            named = bool(document["abandoned"] or document["deleted"])
            self.remove_named(document)
            document["abandoned"], document["deleted"] = [], []
            return document if change(document) or named else None

        return self._complete(self.store.update_json(self.key, apply))

    def remove_named(self, document):
        """Remove the keys the document names as abandoned or deleted (never a live backup's key,
        never one outside this folder). What fails stays named, for the next change to remove."""
        live = {manifest["key"] for manifest in document["backups"].values()}
        abandoned = [key for key in document["abandoned"] if key not in live and key.startswith(self.prefix)]
        deleted = [key for key in document["deleted"] if key not in live and key.startswith(self.prefix)]
        if abandoned:
            self.store.discard(abandoned)
        if deleted:
            self.store.delete(deleted)

    @staticmethod
    def ids(document):
        """Ids of complete backups, oldest first."""
        return sorted(document["backups"])

    def resolve(self, document, wanted: str, field="backup"):
        ids = self.ids(document)
        if not ids:
            raise ConfigError(f"there is no backup of {self.database!r} in {self.store.describe(self.prefix)}", field="database")
        if wanted in (None, "", "latest"):
            return ids[-1]
        if wanted not in ids:
            raise ConfigError(f"no backup {wanted!r} of {self.database!r} in {self.store.describe(self.prefix)}; newest is {ids[-1]}", field=field)
        return wanted


def manifest_of(entry):
    return {key: value for key, value in entry.items() if key != "drill"}


# ---------------------------------------------------------------------- PostgreSQL


def _connect_kwargs(args, dbname):
    kwargs = {"dbname": dbname, "port": args["pg_port"], "connect_timeout": args["connect_timeout"], "application_name": "caretaker"}
    for option, key in (("pg_host", "host"), ("pg_user", "user"), ("pg_password", "password"), ("pg_passfile", "passfile")):
        if args.get(option):
            kwargs[key] = args[option]
    return kwargs


def connect(args, dbname=None, autocommit=False):
    return pg.connect(autocommit=autocommit, database_field="database", credentials_field="pg_password",
                      **_connect_kwargs(args, dbname or args["database"]))


def _pg_env(args):
    env = dict(os.environ)
    for option, name in (("pg_host", "PGHOST"), ("pg_user", "PGUSER"), ("pg_password", "PGPASSWORD"), ("pg_passfile", "PGPASSFILE")):
        if args.get(option):
            env[name] = args[option]
    env["PGPORT"] = str(args["pg_port"])
    env["PGCONNECT_TIMEOUT"] = str(args["connect_timeout"])
    return env


def pg_program(args, name, server_version):
    """The client program matching the server's major version when that is installed."""
    directory = args.get("pg_bin_dir") or f"/usr/lib/postgresql/{server_version // 10000}/bin"
    path = os.path.join(directory, name)
    return path if os.access(path, os.X_OK) else name


def _tables(conn):
    from psycopg import sql

    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
        " ORDER BY 1, 2"
    ).fetchall()
    return [(f"{schema}.{name}", sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))) for schema, name in rows]


def row_counts(conn):
    return {name: conn.execute(query).fetchone()[0] for name, query in _tables(conn)}


class _Drain(threading.Thread):
    """Collects the tail of a child's stderr so a chatty child never blocks on a full pipe."""

    def __init__(self, stream, limit=8192):
        super().__init__(daemon=True)
        self.stream, self.limit, self.tail = stream, limit, b""
        self.start()

    def run(self):
        for line in self.stream:
            self.tail = (self.tail + line)[-self.limit :]

    def text(self):
        self.join(5)
        return self.tail.decode(errors="replace").strip()


class _Background(threading.Thread):
    def __init__(self, function):
        super().__init__(daemon=True)
        self.function, self.result, self.error = function, None, None
        self.start()

    def run(self):
        try:
            self.result = self.function()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc

    def value(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.result


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class _HashingSink:
    def __init__(self, writer):
        self.writer, self.sha256, self.size = writer, hashlib.sha256(), 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        self.writer.write(data)

    def close(self):
        pass


def _compressor(args):
    import zstandard

    threads = args["compression_threads"]
    options = {"threads": threads, "job_size": COMPRESSION_JOB_SIZE} if threads else {}
    parameters = zstandard.ZstdCompressionParameters.from_level(args["compression_level"], write_checksum=True, **options)
    return zstandard.ZstdCompressor(compression_params=parameters)


def _advisory_key(database):
    return int.from_bytes(hashlib.sha256(b"caretaker.pg_backup:" + database.encode()).digest()[:8], "big", signed=True)


def _check_compression(args):
    if not 1 <= args["compression_level"] <= 22:
        raise ConfigError(f"must be between 1 and 22, got {args['compression_level']}", field="compression_level")
    if args["compression_threads"] < -1:
        raise ConfigError("must be -1 (one per CPU), 0 (none) or a thread count", field="compression_threads")


# ---------------------------------------------------------------------- metrics


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _write_metric(ctx, filename, name, help_text, database, value):
    settings = getattr(ctx, "settings", None)
    if settings is None or not settings.metrics_dir:
        return
    metrics.write_textfile(settings.metrics_dir, filename, [(name, "gauge", help_text, [({"database": database}, value)])])


def _record_drill_in_ledger(ctx, record):
    from ..foundation.ledger import Ledger

    settings = getattr(ctx, "settings", None)
    if settings is None:
        return
    ledger = Ledger(settings.database)
    try:
        ledger.record_drill(record["database"], record["backup_id"], record["ok"], record["restore_seconds"], record["checked_at"], record.get("error"))
    finally:
        ledger.close()


# ------------------------------------------------------------------------- backup


def _check_backup(args):
    """Everything about a backup job that can be wrong without contacting anything; also run
    by `caretaker validate`, so a bad key or policy is refused when the job is installed."""
    recipients = [age.parse_recipient(text, field=f"recipients[{index}]") for index, text in enumerate(args["recipients"])]
    _check_compression(args)
    if args["prune"]:
        check_policy(args)
    catalog = Catalog(open_store(args), args["database"])
    return recipients, catalog


def _backup(args, ctx):
    recipients, catalog = _check_backup(args)
    store = catalog.store
    store.check(create=not ctx.check_mode)
    conn = connect(args, autocommit=True)
    try:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (_advisory_key(args["database"]),)).fetchone()[0]:
            raise TransientError(f"another backup of database {args['database']!r} is running on this server")
        server_version = conn.info.server_version
        planned = {"database": args["database"], "destination": store.describe(catalog.prefix), "encrypted": bool(recipients)}
        if ctx.check_mode:
            return {"changed": True, **planned}
        result = _dump(args, ctx, conn, catalog, recipients, server_version)
    finally:
        conn.close()
    _write_metric(
        ctx,
        f"caretaker_backup_{_safe(args['database'])}.prom",
        "caretaker_backup_last_success_timestamp_seconds",
        "Unix time the newest backup of the database finished.",
        args["database"],
        time.time(),
    )
    if args["prune"]:
        result["prune"] = _prune(args, ctx)
    return result


def _begin(catalog, ctx, backup_id, data_key, started):
    """Name this run in the catalog as pending. Runs still pending hold no lock any more (this run
    holds it), so they were killed: their keys are abandoned and removed."""
    left = {}

    def begin(document):
        left.update(document["pending"])
        document["abandoned"] += [entry["key"] for entry in document["pending"].values()]
        document["pending"] = {backup_id: {"key": data_key, "started": iso(started), "host": _host(ctx)}}
        return True

    catalog.remove_named(catalog.update(begin))
    if left:
        ctx.log("abandoned_runs_removed", keys=[entry["key"] for entry in left.values()])
    return len(left)


def _commit(catalog, manifest):
    def commit(document):
        document["pending"].pop(manifest["id"], None)
        document["backups"][manifest["id"]] = manifest
        return True

    catalog.update(commit)


def _forget(catalog, backup_id, data_key):
    """After a failed run: its key is abandoned now rather than at the next run (best effort)."""

    def forget(document):
        if document["pending"].pop(backup_id, None) is None:
            return False
        document["abandoned"].append(data_key)
        return True

    with contextlib.suppress(CaretakerError):
        catalog.remove_named(catalog.update(forget))


def _host(ctx):
    return (ctx.settings.host if getattr(ctx, "settings", None) else "") or socket.gethostname()


def _dump(args, ctx, conn, catalog, recipients, server_version):
    started, clock = _now(), time.monotonic()
    backup_id = new_backup_id(started)
    data_key = catalog.data_key(backup_id, bool(recipients))
    abandoned = _begin(catalog, ctx, backup_id, data_key, started)
    try:
        manifest = _stream_dump(args, ctx, conn, catalog.store, recipients, server_version, backup_id, data_key, started)
        # Written last: until the manifest is in the catalog, the backup does not exist.
        _commit(catalog, manifest)
    except Exception:
        _forget(catalog, backup_id, data_key)
        raise
    seconds = round(time.monotonic() - clock, 3)  # the manifest's times are to the second
    ctx.log("backup_done", backup_id=backup_id, size=manifest["size"], seconds=seconds)
    return {
        "changed": True,
        "backup_id": backup_id,
        "key": data_key,
        "size": manifest["size"],
        "sha256": manifest["sha256"],
        "tables": len(manifest["tables"]),
        "seconds": seconds,
        "abandoned_runs_removed": abandoned,
    }


def _stream_dump(args, ctx, conn, store, recipients, server_version, backup_id, data_key, started):
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    pg_dump = pg_program(args, "pg_dump", server_version)
    argv = [pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot}", "--no-password", f"--dbname={args['database']}"]
    ctx.log("dump_start", backup_id=backup_id, key=data_key, argv=argv)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_pg_env(args))
    except OSError as exc:
        raise CaretakerError(f"cannot run {pg_dump}: {exc.strerror}") from None
    with contextlib.suppress(OSError):  # a pipe as large as a read lets pg_dump run ahead while a chunk compresses
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, READ_SIZE)
    stderr = _Drain(proc.stderr)
    counting = _Background(lambda: row_counts(conn))
    writer = None
    try:
        writer = store.open_writer(data_key)
        sink = _HashingSink(writer)
        stage = age.Encryptor(recipients, sink) if recipients else sink
        compressor = _compressor(args).compressobj()
        while True:
            chunk = os.read(proc.stdout.fileno(), READ_SIZE)
            if not chunk:
                break
            compressed = compressor.compress(chunk)
            if compressed:
                stage.write(compressed)
        stage.write(compressor.flush())
        stage.close()
        if proc.wait() != 0:
            raise CaretakerError(f"pg_dump exited with status {proc.returncode}: {stderr.text()[-2000:]}")
        tables = counting.value()
        writer.commit()
    except BaseException:
        _stop(proc)
        if writer is not None:
            writer.abort()
        counting.join()
        raise
    finally:
        conn.execute("ROLLBACK")
    return {
        "format": MANIFEST_FORMAT,
        "id": backup_id,
        "database": args["database"],
        "host": _host(ctx),
        "server_version": server_version,
        "started": iso(started),
        "finished": iso(_now()),
        "key": data_key,
        "size": sink.size,
        "sha256": sink.sha256.hexdigest(),
        "compression": {"algorithm": "zstd", "level": args["compression_level"], "threads": args["compression_threads"]},
        "encryption": {"format": "age", "recipients": list(args["recipients"])} if recipients else None,
        "dump_format": "pg_dump custom, uncompressed",
        "caretaker_version": VERSION,
        "tables": tables,
    }


# ------------------------------------------------------------------------ restore


class _HashingReader:
    def __init__(self, stream):
        self.stream, self.sha256, self.size = stream, hashlib.sha256(), 0

    def read(self, size=READ_SIZE):
        data = self.stream.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self):
        while self.read(READ_SIZE):
            pass


def _identities(args, manifest):
    if not manifest.get("encryption"):
        return None
    if not args.get("identity_file"):
        raise ConfigError("is required: the backup is encrypted with age", field="identity_file")
    try:
        with open(args["identity_file"], encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {args['identity_file']}: {exc.strerror}", field="identity_file") from None
    return age.parse_identities(text)


def _damage(manifest, hashing):
    """An error when what was read differs from what the manifest recorded, else None."""
    if hashing.size == manifest["size"] and hashing.sha256.hexdigest() == manifest["sha256"]:
        return None
    return CaretakerError(
        f"backup {manifest['id']} is damaged: stored {hashing.size} bytes with sha256 {hashing.sha256.hexdigest()},"
        f" the manifest says {manifest['size']} bytes with sha256 {manifest['sha256']}"
    )


def verify_stored(store, manifest, identities):
    """Check size and sha256 of the stored bytes, and that an identity opens the header."""
    reader = store.open_reader(manifest["key"])
    try:
        hashing = _HashingReader(reader)
        if identities is not None:
            age.Decryptor(hashing.read, identities)  # unwraps the file key: the identity fits
        hashing.drain()
    finally:
        reader.close()
    damage = _damage(manifest, hashing)
    if damage:
        raise CaretakerError(f"{damage.message}; nothing was restored")


def _stream_restore(args, store, manifest, identities, dbname, server_version):
    """Feed the backup to pg_restore in one pass, checking size and sha256 as it goes by: a
    damaged backup is reported as damaged even when decryption or pg_restore fails first."""
    import zstandard

    pg_restore = pg_program(args, "pg_restore", server_version)
    argv = [pg_restore, "--exit-on-error", "--no-password", f"--dbname={dbname}"] + (["--no-owner"] if args["no_owner"] else [])
    env = _pg_env(args)
    reader = store.open_reader(manifest["key"])
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        reader.close()
        raise CaretakerError(f"cannot run {pg_restore}: {exc.strerror}") from None
    stderr = _Drain(proc.stderr)
    hashing = _HashingReader(reader)
    try:
        try:
            chunks = age.Decryptor(hashing.read, identities).chunks() if identities is not None else iter(lambda: hashing.read(READ_SIZE), b"")
            decompressor = zstandard.ZstdDecompressor().decompressobj()
            try:
                for chunk in chunks:
                    data = decompressor.decompress(chunk)
                    if data:
                        proc.stdin.write(data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            except zstandard.ZstdError as exc:
                raise CaretakerError(f"backup {manifest['id']} does not decompress: {exc}") from None
            if proc.wait() != 0:
                raise CaretakerError(f"pg_restore exited with status {proc.returncode}: {stderr.text()[-2000:]}")
        except CaretakerError as exc:
            _stop(proc)
            hashing.drain()
            raise (_damage(manifest, hashing) or exc) from None
        hashing.drain()
        damage = _damage(manifest, hashing)
        if damage:
            raise damage
    except BaseException:
        _stop(proc)
        raise
    finally:
        reader.close()


def _database_exists(conn, name):
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _create_database(conn, name):
    from psycopg import sql

    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def _drop_database(conn, name):
    from psycopg import sql

    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def restore_into(args, store, manifest, identities, conn, dbname):
    """Create dbname and restore the (already verified) backup into it; drop it on failure."""
    _create_database(conn, dbname)
    try:
        _stream_restore(args, store, manifest, identities, dbname, conn.info.server_version)
    except BaseException:
        _drop_database(conn, dbname)
        raise


def _restore(args, ctx):
    store = open_store(args)
    catalog = Catalog(store, args["database"])
    document = catalog.read()
    backup_id = catalog.resolve(document, args["backup"])
    manifest = manifest_of(document["backups"][backup_id])
    identities = _identities(args, manifest)
    target = args["target"]
    conn = connect(args, dbname="postgres", autocommit=True)
    try:
        exists = _database_exists(conn, target)
        if exists and not args["replace"]:
            raise ConfigError(f"database {target!r} exists: restore into a new name or set replace to clean and replace it", field="target")
        planned = {"changed": True, "backup_id": backup_id, "target": target, "replaced": exists}
        if ctx.check_mode:
            return planned
        verify_stored(store, manifest, identities)
        ctx.log("verified", backup_id=backup_id, sha256=manifest["sha256"])
        started = time.monotonic()
        building = f"{target[:40]}_caretaker_{secrets.token_hex(4)}" if exists else target
        restore_into(args, store, manifest, identities, conn, building)
        if exists:
            from psycopg import sql

            _drop_database(conn, target)
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(target)))
    finally:
        conn.close()
    return {**planned, "seconds": round(time.monotonic() - started, 3)}


# -------------------------------------------------------------------------- drill


def _drill(args, ctx):
    store = open_store(args)
    catalog = Catalog(store, args["database"])
    document = catalog.read()
    backup_id = catalog.resolve(document, "latest")
    manifest = manifest_of(document["backups"][backup_id])
    identities = _identities(args, manifest)
    scratch = f"caretaker_drill_{secrets.token_hex(6)}"
    if ctx.check_mode:
        return {"changed": True, "backup_id": backup_id, "scratch": scratch}
    conn = connect(args, dbname="postgres", autocommit=True)
    record = {"backup_id": backup_id, "database": args["database"], "ok": False, "restore_seconds": None, "mismatches": {}}
    try:
        started = time.monotonic()
        try:
            # One pass: the scratch database is the drill's own, so the checksum is checked as the
            # bytes stream into it rather than in a pass of its own first, as a restore does.
            restore_into(args, store, manifest, identities, conn, scratch)
            record["restore_seconds"] = round(time.monotonic() - started, 3)
            with connect(args, dbname=scratch) as scratch_conn:
                restored = row_counts(scratch_conn)
            expected = manifest["tables"]
            for name in sorted(set(expected) | set(restored)):
                if expected.get(name) != restored.get(name):
                    record["mismatches"][name] = {"manifest": expected.get(name), "restored": restored.get(name)}
            record["ok"] = not record["mismatches"]
            if record["mismatches"]:
                record["error"] = f"row counts differ from the manifest in {len(record['mismatches'])} tables"
        except CaretakerError as exc:
            record["error"] = exc.message
        finally:
            _drop_database(conn, scratch)
    finally:
        conn.close()
    record["checked_at"] = iso(_now())
    record["tables"] = len(manifest["tables"])
    _record_drill(catalog, record)
    _record_drill_in_ledger(ctx, record)
    ctx.log("drill", **record)
    if not record["ok"]:
        raise CaretakerError(f"restore drill of {args['database']} backup {backup_id} failed: {record['error']}", details={"drill": record})
    _write_metric(
        ctx,
        f"caretaker_backup_verified_{_safe(args['database'])}.prom",
        "caretaker_backup_last_verified_timestamp_seconds",
        "Unix time the newest backup that passed a restore drill was taken.",
        args["database"],
        parse_iso(manifest["finished"]).timestamp(),
    )
    return {"changed": True, "drill": record}


def _record_drill(catalog, record):
    def note(document):
        entry = document["backups"].get(record["backup_id"])
        if entry is None:  # pruned while the drill ran
            return False
        entry["drill"] = record
        return True

    catalog.update(note)


# -------------------------------------------------------------------------- prune


def _prune(args, ctx):
    check_policy(args)
    store = open_store(args)
    catalog = Catalog(store, args["database"])
    now = _now()
    stale_before = now - datetime.timedelta(hours=args["stale_upload_hours"])
    result = {}

    def decide(document):
        backups = [Backup(backup_id, backup_time(backup_id), bool((entry.get("drill") or {}).get("ok"))) for backup_id, entry in document["backups"].items()]
        decided = plan(backups, args, now)
        stale = sorted(backup_id for backup_id, entry in document["pending"].items() if parse_iso(entry["started"]) < stale_before)
        result.update(keep=decided.keep, delete=decided.delete, abandoned=[document["pending"][backup_id]["key"] for backup_id in stale])
        result["changed"] = bool(decided.delete or stale)
        if ctx.check_mode:
            return False
        # Out of the catalog first: a backup stops existing before its bytes go.
        document["deleted"] += [document["backups"].pop(backup_id)["key"] for backup_id in decided.delete]
        document["abandoned"] += [document["pending"].pop(backup_id)["key"] for backup_id in stale]
        return result["changed"]

    if ctx.check_mode:
        decide(catalog.read())
        return result
    catalog.remove_named(catalog.update(decide))
    result["requests"] = store.requests
    if result["changed"]:
        ctx.log("pruned", deleted=len(result["delete"]), kept=len(result["keep"]), abandoned=len(result["abandoned"]), requests=store.requests)
    return result


# --------------------------------------------------------------------------- info


def _info(args, ctx):
    store = open_store(args)
    catalog = Catalog(store, args["database"])
    document = catalog.read()
    ids = catalog.ids(document)
    if args.get("backup"):
        ids = [catalog.resolve(document, args["backup"])]
    entries = document["backups"]
    backups = [{"id": backup_id, "manifest": manifest_of(entries[backup_id]), "drill": entries[backup_id].get("drill")} for backup_id in ids]
    verified = [entry for entry in backups if entry["drill"] and entry["drill"].get("ok")]
    return {
        "changed": False,
        "database": args["database"],
        "location": store.describe(catalog.prefix),
        "backups": backups,
        "latest": backups[-1]["id"] if backups else None,
        "latest_verified": verified[-1]["id"] if verified else None,
        "pending": sorted(entry["key"] for entry in document["pending"].values()),
    }


PG_BACKUP = Task(name="pg_backup", argument_spec=BACKUP_SPEC, run=_backup, check=_check_backup)
PG_RESTORE = Task(name="pg_restore", argument_spec=RESTORE_SPEC, run=_restore)
PG_RESTORE_DRILL = Task(name="pg_restore_drill", argument_spec=DRILL_SPEC, run=_drill)
BACKUP_PRUNE = Task(name="backup_prune", argument_spec=PRUNE_SPEC, run=_prune)
BACKUP_INFO = Task(name="backup_info", argument_spec=INFO_SPEC, run=_info)
