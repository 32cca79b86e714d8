"""pg_purge: delete (and optionally archive) rows older than a cutoff, in short batches.

One DELETE of millions of rows is one long transaction: it bloats the table, holds back
vacuum and replicas, and a timeout throws all of it away. Here each batch is its own
transaction of at most batch_size rows, chosen through the time column's index in
(time column, primary key) order and continued from a keyset cursor, so no batch
re-reads the rows earlier batches removed. The cursor lives in the host's ledger: a run
stopped by its runtime budget resumes where it stopped, with the same cutoff.

Every table, column, filter and cutoff is checked against the catalog (and the batch
query planned with EXPLAIN) before the first row is touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from ..foundation import metrics
from ..foundation.errors import CaretakerError, ConfigError, TransientError
from ..foundation.tasks import Task
from ..lib import backup_store, pg

# operator name in the job file -> SQL; the only operators a filter can use
OPERATORS = {
    "=": "=",
    "!=": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "in": "IN",
    "not_in": "NOT IN",
    "like": "LIKE",
    "not_like": "NOT LIKE",
    "is_null": "IS NULL",
    "is_not_null": "IS NOT NULL",
}
LIST_OPERATORS = ("in", "not_in")
UNARY_OPERATORS = ("is_null", "is_not_null")
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")

AGE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

TABLE_OPTIONS = {
    "name": {"type": "str", "required": True},
    "schema": {"type": "str", "default": "public"},
    "time_column": {"type": "str", "required": True},
    "older_than": {"type": "str", "required": True},
    "where": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "column": {"type": "str", "required": True},
            "op": {"type": "str", "default": "=", "choices": list(OPERATORS)},
            "value": {"type": "raw"},
        },
    },
    "batch_size": {"type": "int", "default": 50000},
    "batch_seconds": {"type": "float", "default": 0.5},
    "pause": {"type": "float", "default": 0.0},
    "budget": {"type": "float", "default": 900.0},
    "lock_timeout": {"type": "float", "default": 2.0},
    "statement_timeout": {"type": "float", "default": 30.0},
    "archive": {"type": "bool", "default": False},
    "missing_index": {"type": "str", "default": "fail", "choices": ["fail", "warn"]},
}

# Where archives go: the backup store's options, with no default directory (archives are
# not backups; an operator names the place).
ARCHIVE_OPTIONS = {**backup_store.STORE_SPEC, "directory": {"type": "path"}}

ARGUMENT_SPEC = {
    "conninfo": pg.CONNINFO_OPTION,
    "tables": {"type": "list", "elements": "dict", "required": True, "options": TABLE_OPTIONS},
    "archive": {"type": "dict", "options": ARCHIVE_OPTIONS},
    "archive_dir": {"type": "path"},
    "archive_level": {"type": "int", "default": 3},
}


def parse_cutoff(text, now, field):
    """An age (7d, 12h, 30m, 2w, 90s) before now, or an ISO 8601 timestamp (UTC if no zone)."""
    match = AGE.match(text)
    if match:
        amount = int(match.group(1))
        if amount == 0:
            raise ConfigError("an age of 0 would purge everything up to now; give a positive age", field=field)
        return now - dt.timedelta(seconds=amount * AGE_UNITS[match.group(2)])
    try:
        cutoff = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r} is neither an age such as 7d, 12h, 30m, 2w nor an ISO 8601 timestamp", field=field) from None
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=dt.UTC)
    if cutoff > now:
        raise ConfigError(f"{text!r} is in the future (now is {now.isoformat(timespec='seconds')})", field=field)
    return cutoff


@dataclass
class TablePlan:
    """One table's checked settings and the SQL pieces built from them."""

    index: int
    options: dict
    cutoff: dt.datetime
    cutoff_param: str
    keys: list  # primary key columns, or [] to key on ctid
    filter_sql: object
    filter_params: list
    warnings: list = dataclass_field(default_factory=list)

    @property
    def label(self):
        return f"{self.options['schema']}.{self.options['name']}"

    @property
    def field(self):
        return f"tables[{self.index}]"


def _check_numbers(options, prefix):
    if options["batch_size"] < 1:
        raise ConfigError("must be at least 1", field=f"{prefix}.batch_size")
    for name in ("pause", "batch_seconds"):
        if options[name] < 0:
            raise ConfigError("must not be negative", field=f"{prefix}.{name}")
    for name in ("budget", "lock_timeout", "statement_timeout"):
        if options[name] <= 0:
            raise ConfigError("must be a positive number of seconds", field=f"{prefix}.{name}")


def _filter_sql(conditions, prefix):
    """AND-ed structured conditions -> (Composed, params). Values never become SQL text."""
    from psycopg import sql

    parts, params = [], []
    for position, condition in enumerate(conditions):
        field = f"{prefix}.where[{position}]"
        column, op, value = sql.Identifier(condition["column"]), condition["op"], condition["value"]
        if op in UNARY_OPERATORS:
            if value is not None:
                raise ConfigError(f"operator {op} takes no value", field=field + ".value")
            parts.append(sql.SQL("{} " + OPERATORS[op]).format(column))
        elif op in LIST_OPERATORS:
            if not isinstance(value, list) or not value or any(isinstance(item, (list, dict)) or item is None for item in value):
                raise ConfigError(f"operator {op} needs a non-empty list of plain values", field=field + ".value")
            placeholders = sql.SQL(", ").join(sql.Placeholder() * len(value))
            parts.append(sql.SQL("{} " + OPERATORS[op] + " ({})").format(column, placeholders))
            params.extend(pg.param(item) for item in value)
        else:
            if value is None or isinstance(value, (list, dict)):
                raise ConfigError(f"operator {op} needs one plain value (use is_null for NULL)", field=field + ".value")
            parts.append(sql.SQL("{} " + OPERATORS[op] + " {}").format(column, sql.Placeholder()))
            params.append(pg.param(value))
    return sql.SQL("").join(sql.SQL(" AND ") + part for part in parts), params


class BatchSizer:
    """Rows per batch, steered towards `seconds` per batch and never above `cap`.

    It starts small, so a table with slow rows (wide, many indexes, triggers) never sees a
    long first batch, and grows at most fourfold per batch; seconds 0 keeps the cap fixed.
    """

    START = 1000

    def __init__(self, cap, seconds):
        self.cap = cap
        self.seconds = seconds
        self.size = cap if not seconds else min(cap, self.START)

    def observe(self, rows, elapsed):
        if not self.seconds or rows < self.size:
            return
        scale = min(self.seconds / max(elapsed, 1e-3), 4.0)
        self.size = max(1, min(self.cap, int(self.size * scale)))


class Purge:
    def __init__(self, args, ctx, now=None):
        self.args = args
        self.ctx = ctx
        self.now = now or dt.datetime.now(dt.UTC)
        self.job = ctx.job or "pg_purge"
        self.run_token = (ctx.run_id or uuid.uuid4().hex)[:12]
        self.store = None

    # checks -----------------------------------------------------------------
    def plan(self, conn):
        if not self.args["tables"]:
            raise ConfigError("lists no table", field="tables")
        plans = []
        for index, options in enumerate(self.args["tables"]):
            prefix = f"tables[{index}]"
            _check_numbers(options, prefix)
            cutoff = parse_cutoff(options["older_than"], self.now, f"{prefix}.older_than")
            if options["archive"] and not (self.args["archive_dir"] or self.args["archive"]):
                raise ConfigError(f"{prefix}.archive is true, so archive (or archive_dir) must say where archives go", field="archive")
            plans.append(self._plan_table(conn, index, options, cutoff))
        for plan in plans:
            self._explain(conn, plan)
        if any(plan.options["archive"] for plan in plans):
            self.store = self._open_store()
        return plans

    def _open_store(self):
        """The archive store, checked (bucket there, directory writable) before any row goes."""
        if self.args["archive_dir"] and self.args["archive"]:
            raise ConfigError("give archive or archive_dir, not both", field="archive_dir")
        if self.args["archive"]:
            options, prefix = self.args["archive"], "archive."
            if options["destination"] == "local" and not options["directory"]:
                raise ConfigError("is required when destination is local", field="archive.directory")
        else:
            options = {name: spec.get("default") for name, spec in ARCHIVE_OPTIONS.items()}
            options["directory"] = self.args["archive_dir"]
            prefix = ""
        try:
            store = backup_store.open_store(options)
            store.check(create=not self.ctx.check_mode)
        except ConfigError as exc:
            field = "archive_dir" if not prefix and exc.field == "directory" else prefix + (exc.field or "")
            raise ConfigError(exc.reason, field=field) from None
        return store

    def _plan_table(self, conn, index, options, cutoff):
        from psycopg import sql

        prefix = f"tables[{index}]"
        schema, name = options["schema"], options["name"]
        columns = pg.table_columns(conn, schema, name)
        if columns is None:
            raise ConfigError(f"table {schema}.{name} does not exist", field=f"{prefix}.name")
        label = f"{schema}.{name}"
        wanted = [(f"{prefix}.time_column", options["time_column"])]
        wanted += [(f"{prefix}.where[{i}].column", condition["column"]) for i, condition in enumerate(options["where"])]
        pg.check_columns(columns, wanted, label)
        kind = columns[options["time_column"]]
        if kind not in TIME_TYPES:
            raise ConfigError(f"column {options['time_column']!r} is {kind}, not a timestamp or date", field=f"{prefix}.time_column")
        filter_sql, filter_params = _filter_sql(options["where"], prefix)
        cutoff_param = cutoff.date().isoformat() if kind == "date" else cutoff.isoformat()
        plan = TablePlan(index, options, cutoff, cutoff_param, pg.primary_key(conn, schema, name), filter_sql, filter_params)
        if not pg.has_leading_index(conn, schema, name, options["time_column"]):
            statement = sql.SQL("CREATE INDEX CONCURRENTLY ON {} ({})").format(pg.qualified(schema, name), sql.Identifier(options["time_column"]))
            message = f"no index starts with {options['time_column']!r}, so every batch would scan {label}; create one: {statement.as_string(conn)}"
            if options["missing_index"] == "fail":
                raise ConfigError(message + " (or set missing_index: warn)", field=f"{prefix}.time_column")
            plan.warnings.append(message)
        return plan

    def _explain(self, conn, plan):
        """Plan the batch query once, so a filter value of the wrong type fails before any delete."""
        import psycopg
        from psycopg import sql

        query, params = self._batch_query(plan, position=None, size=plan.options["batch_size"])
        try:
            conn.execute(sql.SQL("EXPLAIN ") + query, params)
        except psycopg.Error as exc:
            raise ConfigError(f"PostgreSQL rejects the filter on {plan.label}: {pg.first_line(exc)}", field=f"{plan.field}.where") from None

    # SQL ----------------------------------------------------------------------
    def _order(self, plan):
        from psycopg import sql

        keys = [sql.Identifier(key) for key in plan.keys] or [sql.SQL("ctid")]
        return [sql.Identifier(plan.options["time_column"]), *keys]

    def _condition(self, plan):
        from psycopg import sql

        time_column = sql.Identifier(plan.options["time_column"])
        return sql.SQL("{} < {}").format(time_column, sql.Placeholder()) + plan.filter_sql, [plan.cutoff_param, *plan.filter_params]

    def _after(self, plan, position):
        """The table's condition, and when there is a cursor, `rows after it` in cursor order."""
        from psycopg import sql

        order = self._order(plan)
        condition, params = self._condition(plan)
        if position is not None:
            # The leading `time >= x` lets the planner start the index scan at the cursor.
            row = sql.SQL(", ").join(order)
            marks = sql.SQL(", ").join(sql.Placeholder() * len(order))
            condition += sql.SQL(" AND {} >= {} AND ({}) > ({})").format(order[0], sql.Placeholder(), row, marks)
            params += [position[0], *position]
        return condition, params

    def _batch_query(self, plan, position, size):
        """SELECT the cursor columns k0, k1... of the next batch, in cursor order."""
        from psycopg import sql

        order = self._order(plan)
        condition, params = self._after(plan, position)
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
            sql.SQL(", ").join(sql.SQL("{} AS {}").format(column, key) for column, key in zip(order, self._keys(plan), strict=True)),
            pg.qualified(plan.options["schema"], plan.options["name"]),
            condition,
            sql.SQL(", ").join(order),
            sql.Literal(size),
        )
        return query, params

    def _bound(self, conn, plan, position, size):
        """The cursor columns of the batch's last row as text, or None when fewer than size rows are left."""
        from psycopg import sql

        keys = self._keys(plan)
        query, params = self._batch_query(plan, position, size=size)
        # LIMIT in a subquery keeps the plan an index scan that stops after size rows;
        # OFFSET size - 1 LIMIT 1 on the table itself can make the planner sort the whole range.
        last = sql.SQL("SELECT {} FROM ({}) b OFFSET {}").format(
            sql.SQL(", ").join(sql.SQL("b.{}::text").format(key) for key in keys), query, sql.Literal(size - 1)
        )
        row = conn.execute(last, params).fetchone()
        return list(row) if row else None

    def _range_delete(self, plan, position, bound):
        """The DELETE of the rows after position up to bound (to the end when bound is None), and its parameters.

        A range over the time index, deleted the way a plain DELETE would: no row fetched by
        ctid, which costs another buffer visit per row.
        """
        from psycopg import sql

        order = self._order(plan)
        condition, params = self._after(plan, position)
        if bound is not None:
            marks = sql.SQL(", ").join(sql.Placeholder() * len(order))
            condition += sql.SQL(" AND {} <= {} AND ({}) <= ({})").format(order[0], sql.Placeholder(), sql.SQL(", ").join(order), marks)
            params += [bound[0], *bound]
        query = sql.SQL("DELETE FROM {} WHERE {}").format(pg.qualified(plan.options["schema"], plan.options["name"]), condition)
        return query, params

    def _keys(self, plan):
        from psycopg import sql

        return [sql.Identifier(f"k{i}") for i in range(len(self._order(plan)))]

    def count(self, conn, plan):
        from psycopg import sql

        condition, params = self._condition(plan)
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(pg.qualified(plan.options["schema"], plan.options["name"]), condition)
        return conn.execute(query, params).fetchone()[0]

    # the run ------------------------------------------------------------------
    def run(self):
        conn = pg.connect(self.args["conninfo"])
        try:
            with pg.explained_errors("pg_purge"):
                return self._run(conn)
        finally:
            conn.close()

    def _run(self, conn):
        plans = self.plan(conn)
        if self.ctx.check_mode:
            return self._predict(conn, plans)
        return self._purge(conn, plans)

    def _predict(self, conn, plans):
        tables = []
        for plan in plans:
            tables.append({"table": plan.label, "cutoff": plan.cutoff.isoformat(), "would_delete": self.count(conn, plan), "warnings": plan.warnings})
        total = sum(table["would_delete"] for table in tables)
        return {"changed": total > 0, "tables": tables, "would_delete": total, "warnings": [w for plan in plans for w in plan.warnings]}

    def _purge(self, conn, plans):
        from ..foundation.ledger import Ledger

        ledger = Ledger(self.ctx.settings.database)
        try:
            tables = []
            for plan in plans:
                for warning in plan.warnings:
                    self.ctx.log("purge_warning", table=plan.label, warning=warning)
                tables.append(self._purge_table(conn, ledger, self.store, plan))
            self._write_metrics(ledger)
        finally:
            ledger.close()
        result = {key: sum(table[key] for table in tables) for key in ("rows_deleted", "rows_archived", "batches")}
        result.update(
            changed=result["rows_deleted"] > 0,
            seconds=round(sum(table["seconds"] for table in tables), 3),
            budget_stopped=any(table["budget_stopped"] for table in tables),
            longest_batch_seconds=max((table["longest_batch_seconds"] for table in tables), default=0.0),
            tables=tables,
            warnings=[w for plan in plans for w in plan.warnings],
        )
        return result

    def _cursor_key(self, conn, plan):
        scope = json.dumps([plan.options["time_column"], plan.options["where"]], sort_keys=True, default=str)
        digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
        return f"{self.job}|{conn.info.host}:{conn.info.port}/{conn.info.dbname}|{plan.label}|{digest}"

    def _purge_table(self, conn, ledger, store, plan):
        key = self._cursor_key(conn, plan)
        saved = ledger.purge_cursor(key)
        position = None
        if saved:
            # Finish the pass the budget interrupted, with the cutoff it started with.
            plan.cutoff_param, position = saved["cutoff"], json.loads(saved["position"])
        stats = {"table": plan.label, "cutoff": plan.cutoff_param, "resumed": saved is not None, "rows_deleted": 0, "rows_archived": 0, "batches": 0}
        self._session(conn, plan.options)
        sizer = BatchSizer(plan.options["batch_size"], plan.options["batch_seconds"])
        started = time.monotonic()
        longest = 0.0
        budget_stopped = False
        while True:
            if time.monotonic() - started >= plan.options["budget"]:
                budget_stopped = True
                break
            batch_started = time.monotonic()
            size = sizer.size
            last, picked, deleted, archived = self._batch(conn, store, plan, position, stats["batches"], size)
            elapsed = time.monotonic() - batch_started
            longest = max(longest, elapsed)
            if picked:
                stats["batches"] += 1
                stats["rows_deleted"] += deleted
                stats["rows_archived"] += archived
            if last is None:
                break  # that was the last, short batch
            sizer.observe(picked, elapsed)
            position = last
            ledger.save_purge_cursor(key, plan.cutoff_param, json.dumps(position))
            if plan.options["pause"]:
                time.sleep(plan.options["pause"])
        if not budget_stopped:
            ledger.drop_purge_cursor(key)
        stats.update(seconds=round(time.monotonic() - started, 3), budget_stopped=budget_stopped, longest_batch_seconds=round(longest, 3))
        ledger.add_purge_totals(self.job, plan.label, stats, budget_stopped)
        self.ctx.log("purge_table", **stats)
        return stats

    def _session(self, conn, options):
        """Session settings for this table's batches; the connection does nothing else meanwhile."""
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false),"
            " set_config('synchronous_commit', 'off', false), set_config('plan_cache_mode', 'force_custom_plan', false)",
            (f"{int(options['lock_timeout'] * 1000)}ms", f"{int(options['statement_timeout'] * 1000)}ms"),
        )
        # synchronous_commit off: a batch no longer waits for its WAL flush. A crash may lose
        # the last few committed batches (never a partial one); their rows are still older
        # than the cutoff, so a later pass deletes them. Archives are stored before the delete.
        # psycopg prepares a statement run 5 times; a generic plan cannot see how narrow the
        # cursor's range is and may scan the whole table, so every batch is planned afresh.

    def _batch(self, conn, store, plan, position, number, size):
        """Pick the batch, archive it if asked, delete it. -> (cursor, picked, deleted, archived).

        The cursor is None when the pass is done: this batch was the last, short one.
        """
        import psycopg

        options = plan.options
        try:
            # The batch's last row, then the range up to it. A row that turns up in the range
            # in between is older than the cutoff too.
            bound = self._bound(conn, plan, position, size)
            if options["archive"]:
                deleted = archived = self._archived_delete(conn, store, plan, position, bound, number)
            else:
                deleted, archived = conn.execute(*self._range_delete(plan, position, bound)).rowcount, 0
            return bound, (size if bound else deleted), deleted, archived
        except psycopg.errors.LockNotAvailable:
            raise TransientError(f"{plan.label}: a batch waited longer than lock_timeout ({options['lock_timeout']} s) for a lock; try again later") from None
        except psycopg.errors.QueryCanceled:
            raise CaretakerError(f"{plan.label}: a batch ran past statement_timeout ({options['statement_timeout']} s); lower batch_size") from None

    def _archived_delete(self, conn, store, plan, position, bound, number):
        """Delete the range and COPY the deleted rows, zstd-compressed, into the store -> count.

        One transaction: the rows archived are exactly the rows deleted, and the delete
        commits only after the archive object is stored whole. Any failure rolls it back.
        """
        import zstandard
        from psycopg import sql

        stamp = self.now.strftime("%Y%m%dT%H%M%SZ")
        key = f"{store.prefix}{plan.label}/{stamp}-{self.run_token}-{number:06d}.csv.zst"
        delete, params = self._range_delete(plan, position, bound)
        query = sql.SQL("COPY ({} RETURNING *) TO STDOUT (FORMAT csv, HEADER)").format(delete)
        compressor = zstandard.ZstdCompressor(level=self.args["archive_level"]).compressobj()
        writer = None
        try:
            with conn.transaction():
                writer = store.open_writer(key)
                with conn.cursor() as cursor:
                    with cursor.copy(query, params) as copy:
                        for data in copy:
                            writer.write(compressor.compress(data))
                    deleted = cursor.rowcount
                writer.write(compressor.flush())
                if deleted:
                    writer.commit()
                else:
                    writer.abort()
            return deleted
        except (OSError, CaretakerError) as exc:
            if writer is not None:
                writer.abort()
            error = TransientError if isinstance(exc, TransientError) else CaretakerError
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise error(f"{plan.label}: archiving a batch to {store.describe(key)} failed, nothing of it was deleted: {reason}") from None
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def _write_metrics(self, ledger):
        rows = ledger.purge_totals(self.job)

        def samples(column):
            return [({"job": self.job, "table": row["target"]}, row[column]) for row in rows if row[column] is not None]

        metrics.write_textfile(
            self.ctx.settings.metrics_dir,
            f"caretaker_purge_{self.job}.prom",
            [
                ("caretaker_purge_rows_deleted_total", "counter", "Rows pg_purge deleted.", samples("rows_deleted")),
                ("caretaker_purge_rows_archived_total", "counter", "Rows pg_purge archived before deleting them.", samples("rows_archived")),
                ("caretaker_purge_batches_total", "counter", "Batches (transactions) pg_purge committed.", samples("batches")),
                ("caretaker_purge_last_run_seconds", "gauge", "Time the last purge of the table took.", samples("last_seconds")),
                ("caretaker_purge_budget_stopped", "gauge", "1 when the last purge stopped at its runtime budget.", samples("last_budget_stopped")),
            ],
        )


def _run(args, ctx):
    return Purge(args, ctx).run()


PG_PURGE = Task(name="pg_purge", argument_spec=ARGUMENT_SPEC, run=_run)
