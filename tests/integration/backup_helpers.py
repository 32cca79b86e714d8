"""Shared steps of the backup tests: run an engine task as the job runner would."""

import concurrent.futures
import hashlib
import json

from caretaker.backup import pg_backup
from caretaker.foundation import argspec, tasks
from caretaker.foundation.timestamps import iso


def run_task(task, params, check_mode=False, settings=None):
    values = argspec.validate(task.argument_spec, params, source="test")
    return task.run(values, tasks.Context(check_mode=check_mode, settings=settings))


def backup(params, **kwargs):
    return run_task(pg_backup.PG_BACKUP, params, **kwargs)


def restore(params, **kwargs):
    """Restore with a backup's parameters; the options only a backup takes are dropped."""
    backup_only = set(pg_backup.BACKUP_SPEC) - set(pg_backup.RESTORE_SPEC)
    return run_task(pg_backup.PG_RESTORE, without(params, *backup_only), **kwargs)


def table_fingerprint(postgres, database):
    """Row counts and a hash of every row of the test tables, to compare two databases."""
    with postgres.connect(database) as conn:
        digest = hashlib.sha256()
        for query in ("SELECT * FROM users ORDER BY id", 'SELECT * FROM billing."Invoices" ORDER BY id', "SELECT * FROM empty_table"):
            for row in conn.execute(query):
                digest.update(repr(row).encode())
        return digest.hexdigest()


def without(params, *names):
    return {key: value for key, value in params.items() if key not in names}


def local_catalog(folder):
    """The catalog a local store keeps in folder (the database's directory)."""
    return json.loads((folder / "catalog.json").read_text())


def s3_catalog(client, bucket, prefix):
    return json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}catalog.json")["Body"].read())


def seed_s3_history(client, bucket, prefix, moments, drills=None, pending=None):
    """Backups taken at moments, laid out as the engine lays them out: a data object each and
    their manifests in the catalog. drills: {index: ok}; pending: {key: started datetime}."""
    backups = {}
    for moment in moments:
        backup_id = pg_backup.new_backup_id(moment)
        backups[backup_id] = {"id": backup_id, "key": f"{prefix}{backup_id}.dump.zst"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda entry: client.put_object(Bucket=bucket, Key=entry["key"], Body=b"x"), backups.values()))
    ids = sorted(backups)
    for index, ok in (drills or {}).items():
        backups[ids[index]]["drill"] = {"ok": ok}
    runs = {f"run{number}": {"key": key, "started": iso(started)} for number, (key, started) in enumerate((pending or {}).items())}
    catalog = {"format": pg_backup.CATALOG_FORMAT, "backups": backups, "pending": runs, "abandoned": [], "deleted": []}
    client.put_object(Bucket=bucket, Key=f"{prefix}catalog.json", Body=json.dumps(catalog).encode())
    return ids
