"""Shared steps of the backup tests: run an engine task as the job runner would."""

import hashlib

from caretaker import argspec, pg_backup, tasks


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
