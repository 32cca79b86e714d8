"""PostgreSQL plumbing shared by the tasks that work on an application's tables.

Names reach SQL only through psycopg.sql.Identifier and values only as parameters; the
catalog look-ups here let a task refuse a missing table or column before it changes a row.
"""

from __future__ import annotations

from ..foundation.errors import CaretakerError, ConfigError, TransientError, translated

# How every kind reaches PostgreSQL: libpq's usual keys as pg_* options, and conninfo for
# anything else libpq takes (sslmode, service, target_session_attrs...). An option set here
# wins over the same key in conninfo; unset ones fall back to conninfo, then libpq's defaults
# and PG* variables.
CONNECTION_SPEC = {
    "conninfo": {"type": "str", "default": "", "no_log": True},
    "database": {"type": "str"},
    "pg_host": {"type": "str"},
    "pg_port": {"type": "int"},
    "pg_user": {"type": "str"},
    "pg_password": {"type": "str", "no_log": True},
    "pg_passfile": {"type": "path"},
    "connect_timeout": {"type": "int", "default": 10},
}

# option -> libpq key
_LIBPQ_KEYS = {"database": "dbname", "pg_host": "host", "pg_port": "port", "pg_user": "user",
               "pg_password": "password", "pg_passfile": "passfile", "connect_timeout": "connect_timeout"}


def libpq_params(args, **override):
    """The libpq keys (beyond conninfo) that args set; override wins (dbname of a restore target)."""
    params = {key: args[option] for option, key in _LIBPQ_KEYS.items() if args.get(option) is not None}
    params.update({key: value for key, value in override.items() if value is not None})
    return params


def connect(args, autocommit=True, **override):
    """A connection from the CONNECTION_SPEC options in args, with the session in UTC.

    override sets libpq keys beyond args (the dbname of a restore target). A database that
    does not exist and refused credentials are ConfigErrors naming the option at fault:
    trying again will not help. A server that cannot be reached is a TransientError.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    conninfo = args.get("conninfo") or ""
    # UTF8 whatever the database's encoding: on a SQL_ASCII database psycopg would otherwise
    # return bytes for every text value (a snapshot id, a table name).
    params = {"application_name": "caretaker", "client_encoding": "UTF8", **libpq_params(args, **override)}
    try:
        target = conninfo_to_dict(conninfo, **params)
    except psycopg.ProgrammingError:
        # psycopg's message may quote the string, password included: say less.
        raise ConfigError("is not a valid libpq connection string or URI", field="conninfo") from None
    where = f"{target.get('host') or 'the local socket'} port {target.get('port') or 5432}"
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, **{"connect_timeout": 10, **params})
    except psycopg.OperationalError as exc:
        text = str(exc).strip()
        said = text.splitlines()[-1] if text else type(exc).__name__
        if 'database "' in text and "does not exist" in text:
            field = "conninfo" if conninfo and not args.get("database") else "database"
            raise ConfigError(f"database {target.get('dbname')!r} does not exist on the server at {where}", field=field) from None
        if "password authentication failed" in text or "no password supplied" in text or ("role" in text and "does not exist" in text):
            field = "conninfo" if conninfo and not (args.get("pg_password") or args.get("pg_user")) else "pg_password"
            raise ConfigError(f"PostgreSQL at {where} refused the credentials: {said}", field=field) from None
        raise TransientError(f"cannot reach PostgreSQL at {where}: {said}") from None
    conn.execute("SET TimeZone = 'UTC'")
    if not autocommit:
        conn.commit()  # the SET opened a transaction; the caller's work starts its own
    return conn


def program_connection(args, **override):
    """(--dbname value, environment) for a libpq program (pg_dump, pg_restore).

    The password goes in the environment, never on the command line where `ps` shows it.
    """
    import os

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    target = conninfo_to_dict(args.get("conninfo") or "", **libpq_params(args, **override))
    env = dict(os.environ)
    password = target.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**target), env


def explained_errors(what):
    """Turn a database error that nothing more specific caught into the engine's errors."""
    import psycopg

    return translated(
        (psycopg.OperationalError, lambda exc: TransientError(f"{what}: lost the database: {first_line(exc)}")),
        (psycopg.Error, lambda exc: CaretakerError(f"{what}: PostgreSQL said: {first_line(exc)}")),
    )


def first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def table_columns(conn, schema, table):
    """{column: type name} of an ordinary or partitioned table, or None when there is none."""
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod)
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
            ORDER BY a.attnum""",
        (schema, table),
    ).fetchall()
    return dict(rows) if rows else None


def primary_key(conn, schema, table):
    """The primary key's columns in key order, or [] when the table has none."""
    rows = conn.execute(
        """SELECT a.attname
             FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
            WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
            ORDER BY k.position""",
        (schema, table),
    ).fetchall()
    return [row[0] for row in rows]


def has_leading_index(conn, schema, table, column):
    """Whether a valid index starts with column, so a range on it needs no full scan."""
    row = conn.execute(
        """SELECT count(*)
             FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
            WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND i.indisvalid AND i.indpred IS NULL""",
        (schema, table, column),
    ).fetchone()
    return row[0] > 0


def param(value):
    """A value as a query parameter: text goes over untyped, so PostgreSQL reads it as the column's type."""
    return value if isinstance(value, (bool, int, float)) else str(value)


def qualified(schema, table):
    from psycopg import sql

    return sql.Identifier(schema, table)


def check_columns(columns, wanted, table_label):
    """Raise ConfigError for the first (field, column) in wanted that the table lacks."""
    for field, column in wanted:
        if column not in columns:
            raise ConfigError(f"column {column!r} does not exist in table {table_label}", field=field)
