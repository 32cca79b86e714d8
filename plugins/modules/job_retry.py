#!/usr/bin/python
# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: job_retry
short_description: Requeue an application's failed jobs with backoff, or move them to dead
version_added: 0.1.0
description:
  - Goes through the failed jobs of an application's queue, a PostgreSQL job table with
    configurable columns, Laravel's C(failed_jobs) table, or an RQ (Redis) C(FailedJobRegistry),
    and applies one policy to each.
  - A job whose last error matches a O(never_retry) pattern, or that has used O(max_attempts), is
    dead. In a job table its status becomes O(table.dead_status); in RQ it stays in the failed
    registry with C(meta.caretaker_dead) set and is not retried again; in Laravel's C(failed_jobs) it
    stays where it is, marked dead in caretaker's ledger. Every dead job becomes a
    caretaker dead letter, listed by C(caretaker status) and M(caretaker.ops.job_info).
  - Any other failed job is requeued after a backoff delay. In a job table its status becomes
    O(table.queued_status) and its run time now plus the delay; in RQ it moves to the queue's
    C(ScheduledJobRegistry), which an C(rq worker --with-scheduler) releases when due.
  - With O(backend=laravel) a retryable job waits in C(failed_jobs) until its backoff from C(failed_at)
    (read as UTC) is due, then moves back to the C(jobs) table as C(php artisan queue:retry) does,
    inserted with C(attempts) 0 and C(available_at) now, and deleted from C(failed_jobs), in one
    transaction. Laravel forgets a retried job, so caretaker counts the retries per job C(uuid) in
    its ledger. Only rows of O(laravel.connection) are handled.
  - An alert goes to O(alert_routes) when the dead set grows, and as critical when it holds more
    than O(dead_cap) jobs; it resolves after a run in which no job died and the set is under the cap.
  - The same task runs on the host as the C(job_retry) job kind of C(caretaker run).
requirements:
  - psycopg >= 3.1 (job table backend)
  - rq >= 2.0 and redis (RQ backend)
author:
  - caretaker.ops developers (@caretaker-ops)
extends_documentation_fragment:
  - caretaker.ops.common
  - caretaker.ops.postgres
  - caretaker.ops.attributes
attributes:
  check_mode:
    support: full
    details: Returns the jobs that would be requeued and that would die, and changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Only jobs that failed since the last run are acted on.
options:
  backend:
    description: Where the failed jobs are.
    type: str
    required: true
    choices: [postgres, laravel, rq]
  table:
    description: The job table and the names of its columns and status values (O(backend=postgres)).
    type: dict
    suboptions:
      name:
        description: Table name.
        type: str
        required: true
      schema:
        description: Schema of the table.
        type: str
        default: public
      id_column:
        description: Column identifying a job; the order jobs are handled in.
        type: str
        default: id
      status_column:
        description: Column holding the job's status.
        type: str
        default: status
      attempts_column:
        description: Column counting the attempts made (NULL counts as 0).
        type: str
        default: attempts
      error_column:
        description: Column with the last error, matched against O(never_retry).
        type: str
        default: last_error
      run_at_column:
        description: Column with the time the job may run next; requeued jobs get now plus the backoff.
        type: str
        default: run_at
      failed_status:
        description: Status of a failed job.
        type: str
        default: failed
      queued_status:
        description: Status given to a requeued job.
        type: str
        default: queued
      dead_status:
        description: Status given to a dead job.
        type: str
        default: dead
      increment_attempts:
        description: Add one to the attempts column on requeue; for applications that do not count attempts themselves.
        type: bool
        default: false
  laravel:
    description: Laravel's queue tables, as its migrations create them (O(backend=laravel)).
    type: dict
    default: {}
    suboptions:
      schema:
        description: Schema of both tables.
        type: str
        default: public
      failed_table:
        description: The failed jobs table (C(queue.failed.table)).
        type: str
        default: failed_jobs
      jobs_table:
        description: The database queue's jobs table, where retried jobs go.
        type: str
        default: jobs
      connection:
        description: Only failed jobs of this queue connection (C(failed_jobs.connection)) are handled; the database queue's name.
        type: str
        default: database
  redis_url:
    description: Redis URL of the RQ queues (O(backend=rq)).
    type: str
    default: redis://127.0.0.1:6379/0
  queues:
    description: RQ queue names whose failed registries to handle (O(backend=rq)).
    type: list
    elements: str
    default: [default]
  max_attempts:
    description: Attempts a job may have; a failed job that has made this many is dead.
    type: int
    default: 25
  backoff:
    description:
      - Delay before a requeued job runs again; C(count) is the number of retries so far (attempts minus one).
      - C(sidekiq) waits C(count**4 + base + random(jitter) * (count + 1)) seconds, Sidekiq's schedule;
        C(exponential) waits C(base * factor**count + random(jitter) * (count + 1)). Both at most O(backoff.max_delay).
    type: dict
    default: {}
    suboptions:
      shape:
        description: Shape of the schedule.
        type: str
        default: sidekiq
        choices: [sidekiq, exponential]
      base:
        description:
          - Seconds added to (C(sidekiq)) or multiplied by (C(exponential)) the schedule.
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 15s
      factor:
        description: Growth factor of C(exponential).
        type: float
        default: 2.0
      jitter:
        description:
          - Up to this many seconds per retry, at random, so requeued jobs do not all run at once.
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 10s
      max_delay:
        description:
          - Cap on the delay, in seconds.
          - A duration (seconds, or a number with a unit as in V(30m), V(1.5d) or V(2w)).
        type: raw
        default: 1w
  never_retry:
    description: Regular expressions (Python C(re), searched anywhere in the last error) of errors never retried.
    type: list
    elements: str
    default: []
  limit:
    description: Failed jobs handled per run.
    type: int
    default: 1000
  dead_cap:
    description: Alert as critical when the dead set holds more than this many jobs.
    type: int
    default: 100
  alert_routes:
    description: Alert routes (from C(/etc/caretaker/caretaker.yml)); default the host's C(default_routes).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Retry failed jobs of the app's job table, never retrying validation errors
  caretaker.ops.job_retry:
    backend: postgres
    conninfo: dbname=app host=/run/postgresql
    table:
      name: jobs
      status_column: state
      error_column: exception
      run_at_column: available_at
    max_attempts: 10
    never_retry:
      - "^ValidationError"

- name: Retry Laravel's failed jobs (failed_jobs back to jobs) up to 5 times
  caretaker.ops.job_retry:
    backend: laravel
    conninfo: dbname=app host=/run/postgresql
    max_attempts: 5
    never_retry:
      - ValidationException
      - ModelNotFoundException

- name: Preview what RQ's failed registry would become
  caretaker.ops.job_retry:
    backend: rq
    redis_url: redis://127.0.0.1:6379/0
    queues: [default, mail]
  check_mode: true
  register: caretaker_retry_preview
"""

RETURN = r"""
requeued:
  description: Jobs requeued (or, in check mode, that would be), with their attempts and delay in seconds.
  returned: success
  type: list
  elements: dict
  sample:
    - ref: public.jobs:42
      attempts: 2
      delay: 21.5
      error: "ConnectionError: db1 went away"
waiting:
  description: Laravel jobs (O(backend=laravel)) whose backoff is not due yet, with the seconds left; empty for the other backends.
  returned: success
  type: list
  elements: dict
  sample:
    - ref: public.failed_jobs:0b9f1c6e-2d4f-4c1e-9a51-3f0e8d2b7a10
      attempts: 2
      delay: 14.2
      error: "PDOException: server has gone away"
dead:
  description: Jobs moved to dead (or that would be), with the reason.
  returned: success
  type: list
  elements: dict
  sample:
    - ref: rq:default:4f1c2b9e
      attempts: 1
      reason: error matches never_retry pattern '^ValidationError'
      error: "ValidationError: email is not valid"
dead_total:
  description: Jobs in the dead set after this run.
  returned: success, not in check mode
  type: int
  sample: 3
alert:
  description: The alert this run sent (action, severity, summary), or null.
  returned: success, not in check mode
  type: dict
  sample:
    action: trigger
    severity: warning
    summary: 1 job(s) moved to dead (3 dead in all)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.caretaker.ops.plugins.module_utils.data.job_retry import JOB_RETRY
from ansible_collections.caretaker.ops.plugins.module_utils.modules import run_as_module


def main():
    run_as_module(AnsibleModule, JOB_RETRY)


if __name__ == "__main__":
    main()
