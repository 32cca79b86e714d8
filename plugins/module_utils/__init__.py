# Private to the caretaker.ops collection: the engine's API may change without notice.
"""The caretaker engine: plain Python, no Ansible import.

Installed on each host as the `caretaker` package; the collection's modules import it as
module_utils. Nothing here is a public API: only the modules, the `caretaker` command and
the roles are. Each layer imports only from the layers above it:

    foundation/  errors, timestamps, durations, rules, config and job files, argument specs, the rules the
                 job kinds share when validating (rules), schedules,
                 the ledger (all SQLite), metrics, the task registry
    lib/         libraries over outside things: age encryption, backup stores (S3, a
                 directory), PostgreSQL, supervisord
    alerting/    when to alert (alerts) and delivery to routes (notify)
    runner/      `caretaker run` (run), status and job_info (job_info), noop and command,
                 `caretaker install-jobs` and the job_sync module (job_sync)
    backup/      pg_backup, pg_restore, pg_restore_drill, backup_info; retention for backup_prune
    checks/      health_check, cert_check, log_alert, updates_info; check.py: what every check shares (findings, thresholds, Nagios output)
    hygiene/     file_cleanup
    data/        pg_purge, job_retry
    report/      one host's record (record) and the fleet report rendered from many (render)
    deploy/      releases, the deploy lock and journal, migrations under a lock, the health
                 gate and the load balancer, for the deploy role and its modules

Entry points: `caretaker.cli` (the command) and `caretaker.supervisor_listener`;
`modules.py` is the bridge the Ansible modules use.
"""
