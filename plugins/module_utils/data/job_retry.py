"""job_retry: requeue an application's failed jobs with backoff, or move them to dead.

Three queues people run today: a PostgreSQL job table (column names and status values
configurable), Laravel's failed_jobs table, and an RQ FailedJobRegistry in Redis (driven
through rq's own API). All follow one policy: a failed job whose error matches a never_retry pattern, or that has
used max_attempts, is dead (and becomes a caretaker dead letter, shown by `caretaker
status`); any other is requeued after a capped backoff with jitter, Sidekiq's schedule
by default. An alert goes out when the dead set grows or passes dead_cap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import time
from dataclasses import dataclass

from ..alerting import alerts
from ..alerting.path import observe_and_send
from ..foundation.errors import ConfigError, TransientError, translated
from ..foundation.tasks import Task
from ..lib import pg

TABLE_OPTIONS = {
    "name": {"type": "str", "required": True},
    "schema": {"type": "str", "default": "public"},
    "id_column": {"type": "str", "default": "id"},
    "status_column": {"type": "str", "default": "status"},
    "attempts_column": {"type": "str", "default": "attempts"},
    "error_column": {"type": "str", "default": "last_error"},
    "run_at_column": {"type": "str", "default": "run_at"},
    "failed_status": {"type": "str", "default": "failed"},
    "queued_status": {"type": "str", "default": "queued"},
    "dead_status": {"type": "str", "default": "dead"},
    "increment_attempts": {"type": "bool", "default": False},
}

LARAVEL_OPTIONS = {
    "schema": {"type": "str", "default": "public"},
    "failed_table": {"type": "str", "default": "failed_jobs"},
    "jobs_table": {"type": "str", "default": "jobs"},
    "connection": {"type": "str", "default": "database"},
}

ARGUMENT_SPEC = {
    "backend": {"type": "str", "required": True, "choices": ["postgres", "laravel", "rq"]},
    "conninfo": pg.CONNINFO_OPTION,
    "table": {"type": "dict", "options": TABLE_OPTIONS},
    "laravel": {"type": "dict", "default": {}, "options": LARAVEL_OPTIONS},
    "redis_url": {"type": "str", "default": "redis://127.0.0.1:6379/0", "no_log": True},
    "queues": {"type": "list", "elements": "str", "default": ["default"]},
    "max_attempts": {"type": "int", "default": 25},
    "backoff": {
        "type": "dict",
        "default": {},
        "options": {
            "shape": {"type": "str", "default": "sidekiq", "choices": ["sidekiq", "exponential"]},
            "base": {"type": "float", "default": 15.0},
            "factor": {"type": "float", "default": 2.0},
            "jitter": {"type": "float", "default": 10.0},
            "max_delay": {"type": "float", "default": 7 * 86400.0},
        },
    },
    "never_retry": {"type": "list", "elements": "str", "default": []},
    "limit": {"type": "int", "default": 1000},
    "dead_cap": {"type": "int", "default": 100},
    "alert_routes": {"type": "list", "elements": "str"},
}


SHAPES = {
    "sidekiq": lambda count, backoff: count**4 + backoff["base"],
    "exponential": lambda count, backoff: backoff["base"] * backoff["factor"] ** count,
}


def requeue_delay(attempts, backoff, rng=random):
    """Seconds before the next try of a job that has failed `attempts` times.

    sidekiq: count**4 + base + rand(jitter) * (count + 1), count = retries so far;
    exponential: base * factor**count plus the same jitter. Both capped at max_delay.
    """
    count = max(attempts - 1, 0)
    delay = SHAPES[backoff["shape"]](count, backoff) + rng.uniform(0, backoff["jitter"]) * (count + 1)
    return min(delay, backoff["max_delay"])


@dataclass
class Decision:
    ref: str
    attempts: int
    error: str
    verdict: str  # "requeue", "dead", or "wait" (requeue once its backoff is due)
    reason: str = ""
    delay: float = 0.0

    def report(self):
        entry = {"ref": self.ref, "attempts": self.attempts, "error": self.error[-500:]}
        if self.verdict == "dead":
            entry["reason"] = self.reason
        else:
            entry["delay"] = round(self.delay, 1)
        return entry


class Policy:
    def __init__(self, args, rng=random):
        self.args = args
        self.rng = rng
        if args["max_attempts"] < 1:
            raise ConfigError("must be at least 1", field="max_attempts")
        if args["limit"] < 1:
            raise ConfigError("must be at least 1", field="limit")
        if args["dead_cap"] < 0:
            raise ConfigError("must not be negative", field="dead_cap")
        backoff = args["backoff"]
        for name in ("base", "jitter", "max_delay"):
            if backoff[name] < 0:
                raise ConfigError("must not be negative", field=f"backoff.{name}")
        if backoff["factor"] < 1:
            raise ConfigError("must be at least 1", field="backoff.factor")
        self.never_retry = []
        for index, pattern in enumerate(args["never_retry"]):
            try:
                self.never_retry.append(re.compile(pattern))
            except re.error as exc:
                raise ConfigError(f"{pattern!r} is not a regular expression: {exc}", field=f"never_retry[{index}]") from None

    def decide(self, ref, attempts, error):
        error = error or ""
        for pattern in self.never_retry:
            if pattern.search(error):
                return Decision(ref, attempts, error, "dead", f"error matches never_retry pattern {pattern.pattern!r}")
        if attempts >= self.args["max_attempts"]:
            return Decision(ref, attempts, error, "dead", f"used all {self.args['max_attempts']} attempts")
        return Decision(ref, attempts, error, "requeue", delay=requeue_delay(attempts, self.args["backoff"], self.rng))


class _TableQueue:
    """What the PostgreSQL queues share: one connection, errors named after the table."""

    def __init__(self, args, label):
        self.args = args
        self.label = label
        self.conn = pg.connect(args["conninfo"])

    def close(self):
        self.conn.close()

    def errors(self):
        return pg.explained_errors(self.label)

    def _check_table(self, schema, name, field, wanted):
        """Refuse a missing table (naming field) or any missing column of wanted [(field, column)]."""
        columns = pg.table_columns(self.conn, schema, name)
        if columns is None:
            raise ConfigError(f"table {schema}.{name} does not exist", field=field)
        pg.check_columns(columns, wanted, f"{schema}.{name}")


class PostgresQueue(_TableQueue):
    """A job table: failed rows get status queued and a run time, or status dead."""

    source = "postgres"

    def __init__(self, args, ctx):
        if not args["table"]:
            raise ConfigError("is required when backend is postgres", field="table")
        self.table = args["table"]
        super().__init__(args, f"{self.table['schema']}.{self.table['name']}")

    def check(self):
        table = self.table
        names = ("id_column", "status_column", "attempts_column", "error_column", "run_at_column")
        self._check_table(table["schema"], table["name"], "table.name", [(f"table.{name}", table[name]) for name in names])

    def _names(self):
        from psycopg import sql

        table = self.table
        return {
            "table": pg.qualified(table["schema"], table["name"]),
            **{name: sql.Identifier(table[f"{name}_column"]) for name in ("id", "status", "attempts", "error", "run_at")},
        }

    def failed(self, limit, lock):
        """[(ref, id, attempts, error)] of failed jobs, oldest first, locked for this transaction if lock."""
        from psycopg import sql

        query = sql.SQL("SELECT {id}, COALESCE({attempts}, 0), {error}::text FROM {table} WHERE {status} = %s ORDER BY {id} LIMIT %s{lock}").format(
            **self._names(), lock=sql.SQL(" FOR UPDATE SKIP LOCKED") if lock else sql.SQL("")
        )
        rows = self.conn.execute(query, (self.table["failed_status"], limit)).fetchall()
        return [(f"{self.label}:{row[0]}", row[0], row[1], row[2]) for row in rows]

    def process(self, policy, check_mode):
        from psycopg import sql

        names = self._names()
        with self.conn.transaction(force_rollback=check_mode):
            decisions = [(policy.decide(ref, attempts, error), key) for ref, key, attempts, error in self.failed(self.args["limit"], lock=not check_mode)]
            if check_mode:
                return [decision for decision, _key in decisions]
            bump = sql.SQL(", {attempts} = COALESCE({attempts}, 0) + 1").format(**names) if self.table["increment_attempts"] else sql.SQL("")
            requeue = sql.SQL("UPDATE {table} SET {status} = %s, {run_at} = now() + make_interval(secs => %s){bump} WHERE {id} = %s").format(**names, bump=bump)
            kill = sql.SQL("UPDATE {table} SET {status} = %s WHERE {id} = %s").format(**names)
            with self.conn.cursor() as cursor:
                requeues = [(self.table["queued_status"], decision.delay, key) for decision, key in decisions if decision.verdict == "requeue"]
                deaths = [(self.table["dead_status"], key) for decision, key in decisions if decision.verdict == "dead"]
                if requeues:
                    cursor.executemany(requeue, requeues)
                if deaths:
                    cursor.executemany(kill, deaths)
        return [decision for decision, _key in decisions]

    def dead_total(self):
        from psycopg import sql

        query = sql.SQL("SELECT count(*) FROM {table} WHERE {status} = %s").format(**self._names())
        return self.conn.execute(query, (self.table["dead_status"],)).fetchone()[0]


class RqQueue:
    """RQ's FailedJobRegistry: requeue through the ScheduledJobRegistry, or mark dead in meta.

    RQ has no dead state of its own, so a dead job stays in the failed registry (until
    rq's failure_ttl expires it) with meta caretaker_dead set, and is not retried again.
    """

    source = "rq"

    def __init__(self, args, ctx):
        from redis import Redis

        self.args = args
        try:
            self.redis = Redis.from_url(args["redis_url"], socket_connect_timeout=10)
        except ValueError:
            raise ConfigError("is not a valid Redis URL", field="redis_url") from None

    def close(self):
        self.redis.close()

    def errors(self):
        import redis

        return translated((redis.RedisError, lambda exc: TransientError(f"Redis: {exc}")))

    def check(self):
        import redis

        if not self.args["queues"]:
            raise ConfigError("lists no queue", field="queues")
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise TransientError(f"cannot reach Redis: {exc}") from None

    def _jobs(self):
        from rq import Queue
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        for name in self.args["queues"]:
            queue = Queue(name, connection=self.redis)
            registry = queue.failed_job_registry
            for job_id in registry.get_job_ids():
                try:
                    job = Job.fetch(job_id, connection=self.redis)
                except NoSuchJobError:
                    continue
                yield queue, registry, job

    def process(self, policy, check_mode):
        decisions = []
        now = dt.datetime.now(dt.UTC)
        for queue, registry, job in self._jobs():
            if len(decisions) >= self.args["limit"]:
                break
            if job.meta.get("caretaker_dead"):
                continue
            attempts = int(job.meta.get("caretaker_attempts", 0)) + 1
            latest = job.latest_result()
            decision = policy.decide(f"rq:{queue.name}:{job.id}", attempts, (latest and latest.exc_string) or "")
            decisions.append(decision)
            if check_mode:
                continue
            job.meta["caretaker_attempts"] = attempts
            if decision.verdict == "dead":
                job.meta["caretaker_dead"] = decision.reason
                job.save_meta()
                continue
            job.save_meta()
            with self.redis.pipeline() as pipe:
                registry.remove(job, pipeline=pipe)
                queue.schedule_job(job, now + dt.timedelta(seconds=decision.delay), pipeline=pipe)
                pipe.execute()
        return decisions

    def dead_total(self):
        return sum(1 for _queue, _registry, job in self._jobs() if job.meta.get("caretaker_dead"))


COUNT_MEMORY = 30 * 86400  # longer than Sidekiq's whole schedule of 25 retries (about 21 days)
FAILED_COLUMNS = ("id", "uuid", "connection", "queue", "payload", "exception", "failed_at")
JOBS_COLUMNS = ("queue", "payload", "attempts", "reserved_at", "available_at", "created_at")


class LaravelQueue(_TableQueue):
    """Laravel's failed_jobs table, retried as `php artisan queue:retry` does.

    A failed row has no attempts or next-run columns, and Laravel forgets a job's history
    when it is retried, so caretaker counts retries per job uuid in its ledger. A retried
    job goes back into the jobs table (attempts 0, available now) and leaves failed_jobs in
    the same transaction, once its backoff from failed_at is due. A dead job stays in
    failed_jobs, marked dead in the ledger. failed_at is read as UTC, Laravel's default.
    Counts of jobs not seen failing again for 30 days are forgotten.
    """

    source = "laravel"

    def __init__(self, args, ctx):
        self.options = args["laravel"]
        self.ctx = ctx
        self.job = ctx.job or "job_retry"
        self.dead_items = []
        super().__init__(args, f"{self.options['schema']}.{self.options['failed_table']}")

    def check(self):
        for option, wanted in (("failed_table", FAILED_COLUMNS), ("jobs_table", JOBS_COLUMNS)):
            field = f"laravel.{option}"
            self._check_table(self.options["schema"], self.options[option], field, [(field, column) for column in wanted])

    def _ledger(self, check_mode):
        from ..foundation.ledger import Ledger

        if check_mode and not os.path.exists(self.ctx.settings.database):
            return None  # check mode creates no state
        return Ledger(self.ctx.settings.database)

    def process(self, policy, check_mode):
        ledger = self._ledger(check_mode)
        try:
            known = {}
            if ledger is not None:
                known = ledger.retry_counts(self.job, self.label + ":")
            dead = [item for item, state in known.items() if state["dead"]]
            decisions, updates = self._decide_and_move(policy, check_mode, known, dead)
            if not check_mode:
                for values in updates:
                    ledger.save_retry_count(self.job, *values)
                dead += [values[1] for values in updates if values[5]]
                # A requeued job unseen for COUNT_MEMORY succeeded (or was removed): forget its count.
                ledger.forget_retry_counts(self.job, self.label + ":", unseen_for=COUNT_MEMORY)
            self.dead_items = dead
        finally:
            if ledger is not None:
                ledger.close()
        return decisions

    def _names(self):

        schema = self.options["schema"]
        return {"failed": pg.qualified(schema, self.options["failed_table"]), "jobs": pg.qualified(schema, self.options["jobs_table"])}

    def _decide_and_move(self, policy, check_mode, known, dead):
        """-> (decisions, ledger rows (ref, item, retries, due, due_attempts, dead)); moves due jobs back."""
        from psycopg import sql

        names = self._names()
        now = time.time()
        decisions, updates, moves = [], [], []
        with self.conn.transaction(force_rollback=check_mode):
            query = sql.SQL(
                "SELECT id, uuid, queue, payload, exception, extract(epoch FROM COALESCE(failed_at, now()))::float8 FROM {failed} "
                "WHERE connection = %s AND NOT (uuid = ANY(%s)) ORDER BY id LIMIT %s{lock}"
            ).format(**names, lock=sql.SQL("") if check_mode else sql.SQL(" FOR UPDATE SKIP LOCKED"))
            rows = self.conn.execute(query, (self.options["connection"], dead, self.args["limit"])).fetchall()
            for key, item, queue, payload, error, failed_at in rows:
                ref = f"{self.label}:{item}"
                state = known.get(item) or {"retries": 0, "due": None, "due_attempts": None}
                attempts = state["retries"] + 1
                decision = policy.decide(ref, attempts, error)
                if decision.verdict == "dead":
                    updates.append((ref, item, state["retries"], None, None, 1))
                else:
                    # The jitter is drawn once per attempt and kept, so reruns do not redraw it.
                    due = state["due"] if state["due_attempts"] == attempts else failed_at + decision.delay
                    if due > now:
                        decision.verdict, decision.delay = "wait", due - now
                        updates.append((ref, item, state["retries"], due, attempts, 0))
                    else:
                        moves.append((key, queue, _reset_attempts(payload)))
                        updates.append((ref, item, attempts, None, None, 0))
                decisions.append(decision)
            if moves and not check_mode:
                requeue = sql.SQL(
                    "WITH gone AS (DELETE FROM {failed} WHERE id = %s) INSERT INTO {jobs} (queue, payload, attempts, reserved_at, available_at, created_at) "
                    "VALUES (%s, %s, 0, NULL, extract(epoch FROM now())::int, extract(epoch FROM now())::int)"
                ).format(**names)
                with self.conn.cursor() as cursor:
                    cursor.executemany(requeue, moves)
        return decisions, updates

    def dead_total(self):
        from psycopg import sql

        query = sql.SQL("SELECT count(*) FROM {failed} WHERE uuid = ANY(%s)").format(**self._names())
        return self.conn.execute(query, (self.dead_items,)).fetchone()[0]


def _reset_attempts(payload):
    """The payload with its attempts count set to 0, as queue:retry does; unchanged if it has none."""
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(data, dict) or "attempts" not in data:
        return payload
    data["attempts"] = 0
    return json.dumps(data, separators=(",", ":"))


BACKENDS = {"postgres": PostgresQueue, "laravel": LaravelQueue, "rq": RqQueue}


def _run(args, ctx):
    policy = Policy(args)
    backend = BACKENDS[args["backend"]](args, ctx)
    try:
        with backend.errors():
            backend.check()
            decisions = backend.process(policy, ctx.check_mode)
            dead_total = None if ctx.check_mode else backend.dead_total()
    finally:
        backend.close()
    requeued = [d for d in decisions if d.verdict == "requeue"]
    dead = [d for d in decisions if d.verdict == "dead"]
    result = {
        "changed": bool(requeued or dead),
        "requeued": [d.report() for d in requeued],
        "dead": [d.report() for d in dead],
        "waiting": [d.report() for d in decisions if d.verdict == "wait"],
    }
    if ctx.check_mode:
        return result
    result["dead_total"] = dead_total
    result["alert"] = _record(args, ctx, backend.source, dead, dead_total)
    ctx.log("job_retry", backend=backend.source, requeued=len(requeued), dead=len(dead), dead_total=dead_total)
    return result


def _record(args, ctx, source, dead, dead_total):
    """Dead letters into the ledger; alert when the dead set grew or is over the cap."""
    from ..foundation.ledger import Ledger

    settings = ctx.settings
    job = ctx.job or "job_retry"
    ledger = Ledger(settings.database)
    try:
        for decision in dead:
            ledger.add_dead_letter(source, job, decision.ref, f"{decision.reason}: {decision.error[-1000:]}")
        if dead_total > args["dead_cap"]:
            severity, summary = "critical", f"{dead_total} dead jobs, more than the cap of {args['dead_cap']}"
        elif dead:
            severity, summary = "warning", f"{len(dead)} job(s) moved to dead ({dead_total} dead in all)"
        else:
            severity, summary = alerts.OK, f"no new dead jobs ({dead_total} dead in all)"
        alert, _failed = observe_and_send(
            ledger, settings, f"dead_jobs:{job}", severity, summary, check=f"dead_jobs:{job}",
            routes=args["alert_routes"], log=ctx.log, after=1,
            details={"source": source, "dead_total": dead_total, "new_dead": [d.ref for d in dead][:50]},
        )
        if alert is None:
            return None
        return {"action": alert.action, "severity": alert.severity, "summary": alert.summary}
    finally:
        ledger.close()


JOB_RETRY = Task(name="job_retry", argument_spec=ARGUMENT_SPEC, run=_run)
