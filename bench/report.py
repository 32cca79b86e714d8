"""The fleet report for 1,000 synthetic hosts against the demo fleet's 3.

Records are shaped like host_report's (jobs with check states, a certificate, a database's
backups, disks and inodes, updates, dead letters) with a mix of problems and some stale or
unreachable hosts. Measured side by side: merging the records and writing the HTML and JSON
(goal under 5 s for 1,000 hosts). Also printed: the page's size (goal under 3 MB, against
ansible-cmdb's 33 MB for 850 hosts) and the time until the page is interactive in headless
chromium (goal under 2 s). Exits 1 on a missed goal.
"""

import json
import os
import random
import sys
import tempfile
import time

from common import Command, compare, engine_pythonpath

sys.path.insert(0, engine_pythonpath())

from caretaker.report import render
from caretaker.report.record import iso, item

PAGE_GOAL_BYTES = 3 * 1000 * 1000
INTERACTIVE_GOAL_SECONDS = 2.0


def synthetic_record(index, now, rng):
    host = f"host{index:04d}.example.net"
    age = 86400 * 3 if rng.random() < 0.03 else rng.uniform(0, 600)  # a few hosts reported days ago: stale
    seen = now - age
    items = []
    for job, kind, every in (("heartbeat", "noop", 300), ("disk-report", "command", 86400), ("monitoring-health", "health_check", 300),
                             ("monitoring-certs", "cert_check", 21600), ("monitoring-logs", "log_alert", 300), ("backup-shop", "pg_backup", 86400)):
        status = rng.choices(["ok", "warning", "critical", "unknown"], [90, 4, 4, 2])[0]
        message = {"ok": "1 check(s) ok", "warning": "memory: 87% used", "critical": "cron.service: inactive (dead)",
                   "unknown": "the check did not complete: timeout (exit 124)"}[status]
        items.append(item("job", job, status, message, iso(seen - rng.uniform(0, every)), round(every * 1.1 + 300), kind=kind,
                          last_status="ok", since=iso(seen - 3600)))
    days = rng.choice([5, 12, 40, 60, 80])
    items.append(item("cert", f"cert:/etc/ssl/{host}.pem", "critical" if days <= 7 else "warning" if days <= 14 else "ok",
                      f"expires in {days:.1f} days", iso(seen), 23760, value=float(days), unit="d"))
    backup_age = rng.choice([3.0, 20.0, 30.0, 60.0])
    drill_failed = rng.random() < 0.05
    items.append(item("backup", "shop", "critical" if drill_failed or backup_age > 48 else "warning" if backup_age > 26.7 else "ok",
                      ("restore drill failed: row counts differ; " if drill_failed else "") + f"newest backup {backup_age}h old",
                      iso(seen), 86400, value=backup_age, target=86400, unit="h", size=rng.randint(10**6, 10**9), rpo_hours=backup_age + 24,
                      rto_seconds=round(rng.uniform(5, 300), 1)))
    for mount in ("/", "/var", "/srv/data"):
        used = round(rng.choice([20, 45, 70, 88, 97]) + rng.random(), 1)
        items.append(item("disk", mount, "critical" if used >= 95 else "warning" if used >= 85 else "ok", f"{mount} {used}% used",
                          iso(seen), 86400, value=used, unit="%", warning=85, critical=95))
        items.append(item("inodes", mount, "ok", f"{mount} 3.1% used", iso(seen), 86400, value=3.1, unit="%", warning=85, critical=95))
    security = rng.choice([0, 0, 0, 2, 7])
    items.append(item("updates", "security updates", "warning" if security else "ok", f"{security} pending", iso(seen), 86400, value=security))
    items.append(item("updates", "reboot", "ok", "not required", iso(seen), 86400))
    letters = rng.choice([0] * 9 + [3])
    items.append(item("dead_letters", "dead letters", "critical" if letters else "ok",
                      f"{letters} unacknowledged (export), oldest 2.0d old" if letters else "none", iso(seen), 86400, value=letters))
    return {"version": 1, "host": host, "inventory_hostname": host, "observed_at": iso(seen), "runtime": True, "items": items,
            "errors": [], "status": "ok"}


def write_fleet(directory, count, seed=1):
    rng, now = random.Random(seed), time.time()
    records = os.path.join(directory, "records")
    os.makedirs(records)
    inventory = {}
    for index in range(count):
        record = synthetic_record(index, now, rng)
        inventory[record["host"]] = [f"site{index % 4}", "web" if index % 3 else "db"]
        if index % 97 == 5:  # unreachable this time: no record
            continue
        with open(os.path.join(records, record["host"] + ".json"), "w") as handle:
            json.dump(record, handle)
    with open(os.path.join(directory, "inventory.json"), "w") as handle:
        json.dump(inventory, handle)
    return directory


def render_dir(directory):
    """What the playbook's render step does: read the records and the previous report, write both files."""
    with open(os.path.join(directory, "inventory.json")) as handle:
        inventory = json.load(handle)
    records, notes = render.load_records(os.path.join(directory, "records"))
    out = os.path.join(directory, "fleet.json")
    previous, note = render.load_previous(out)
    report = render.build(records, inventory=inventory, previous=previous, notes=notes + ([note] if note else []))
    render.write_atomic(out, render.to_json(report))
    render.write_atomic(os.path.join(directory, "fleet.html"), render.to_html(report))


def time_to_interactive(path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get("about:blank")
        times = []
        for _run in range(3):
            start = time.perf_counter()
            driver.get("file://" + path)  # returns after the load event, when the inline script has drawn the tables
            while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
                time.sleep(0.01)
            times.append(time.perf_counter() - start)
        return sorted(times)[1]
    finally:
        driver.quit()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        render_dir(sys.argv[2])
        return
    with tempfile.TemporaryDirectory(prefix="bench-report-") as root:
        big = write_fleet(os.path.join(root, "big"), 1000)
        small = write_fleet(os.path.join(root, "small"), 3)
        render_dir(big)
        size = os.path.getsize(os.path.join(big, "fleet.html"))
        interactive = time_to_interactive(os.path.join(big, "fleet.html"))
        render_dir(small)
        small_interactive = time_to_interactive(os.path.join(small, "fleet.html"))
        env = {**os.environ, "PYTHONPATH": engine_pythonpath()}
        script = os.path.abspath(__file__)
        misses = []
        print(f"\nreport page for 1,000 hosts: {size / 1e6:.2f} MB (goal < {PAGE_GOAL_BYTES / 1e6:.0f} MB): "
              f"{'met' if size < PAGE_GOAL_BYTES else 'MISSED'}")
        print(f"time until interactive in headless chromium: {interactive:.2f} s for 1,000 hosts, {small_interactive:.2f} s for 3 "
              f"(goal < {INTERACTIVE_GOAL_SECONDS} s): {'met' if interactive < INTERACTIVE_GOAL_SECONDS else 'MISSED'}")
        if size >= PAGE_GOAL_BYTES:
            misses.append("page size")
        if interactive >= INTERACTIVE_GOAL_SECONDS:
            misses.append("time until interactive")
        compare(
            "report",
            baseline=Command("render the demo fleet (3 hosts)", [sys.executable, script, "--render", small], env=env),
            measured=Command("render 1,000 hosts", [sys.executable, script, "--render", big], env=env),
            repeat=5,
            warmup=1,
            goal_seconds=5.0,
            notes=f"page {size} bytes; interactive {interactive:.3f} s (3 hosts: {small_interactive:.3f} s)",
        )
        if misses:
            print(f"missed: {', '.join(misses)}")
            sys.exit(1)


if __name__ == "__main__":
    main()
