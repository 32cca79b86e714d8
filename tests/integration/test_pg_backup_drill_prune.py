"""Restore drills through the job runner, and pruning a long history in S3."""

import datetime
import json
import math
import sqlite3

from backup_helpers import backup, run_task
from caretaker import pg_backup


def test_drill_restores_compares_and_records(postgres, pg_database, tmp_path, caretaker_host):
    store = {"directory": str(tmp_path / "backups")}
    caretaker_host.add_job("backup", kind="pg_backup", args=postgres.args(pg_database, **store))
    caretaker_host.add_job("drill", kind="pg_restore_drill", args=postgres.args(pg_database, **store))
    code, report = caretaker_host.run("backup")
    assert code == 0, report
    backup_id = report["result"]["backup_id"]
    before = postgres.databases()
    code, report = caretaker_host.run("drill")
    assert code == 0, report
    drill = report["result"]["drill"]
    assert drill["ok"] and drill["backup_id"] == backup_id and drill["tables"] == 3 and drill["restore_seconds"] > 0
    assert postgres.databases() == before, "the scratch database must be dropped"
    stored = json.loads((tmp_path / "backups" / pg_database / f"{backup_id}.drill.json").read_text())
    assert stored["ok"] is True
    manifest = json.loads((tmp_path / "backups" / pg_database / f"{backup_id}.manifest.json").read_text())
    finished = datetime.datetime.fromisoformat(manifest["finished"].replace("Z", "+00:00")).timestamp()
    metric = (caretaker_host.metrics / f"caretaker_backup_verified_{pg_database}.prom").read_text()
    assert f'caretaker_backup_last_verified_timestamp_seconds{{database="{pg_database}"}} {float(finished)!r}' in metric
    with sqlite3.connect(caretaker_host.state / "state.db") as db:
        assert db.execute("SELECT backup_id, ok FROM backup_drills").fetchall() == [(backup_id, 1)]
    info = run_task(pg_backup.BACKUP_INFO, {"database": pg_database, **store})
    assert info["latest_verified"] == backup_id

    # A manifest that disagrees with what restores: the drill fails, says why, and cleans up.
    manifest["tables"]["public.users"] = 2999
    (tmp_path / "backups" / pg_database / f"{backup_id}.manifest.json").write_text(json.dumps(manifest))
    code, report = caretaker_host.run("drill")
    assert code == 1 and "row counts differ from the manifest in 1 tables" in report["error"]
    stored = json.loads((tmp_path / "backups" / pg_database / f"{backup_id}.drill.json").read_text())
    assert stored["ok"] is False and stored["mismatches"] == {"public.users": {"manifest": 2999, "restored": 3000}}
    assert postgres.databases() == before
    assert caretaker_host.status()["jobs"]


def seed_history(client, bucket, prefix, count, newest):
    """count backups, one a day back from newest, as the engine lays them out."""
    ids = []
    for day in range(count):
        moment = newest - datetime.timedelta(days=day, minutes=day % 7)
        backup_id = pg_backup.new_backup_id(moment)
        client.put_object(Bucket=bucket, Key=f"{prefix}{backup_id}.dump.zst", Body=b"x")
        client.put_object(Bucket=bucket, Key=f"{prefix}{backup_id}.manifest.json", Body=json.dumps({"id": backup_id}).encode())
        ids.append(backup_id)
    return sorted(ids)


def test_prune_plans_exactly_and_deletes_in_batches_inside_its_prefix(s3):
    bucket = s3.create_bucket()
    client = s3.client()
    newest = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    ids = seed_history(client, bucket, "site/app/", 1300, newest)
    # the newest backup that passed a drill is old; it must survive
    verified = ids[100]
    client.put_object(Bucket=bucket, Key=f"site/app/{verified}.drill.json", Body=json.dumps({"ok": True}).encode())
    failed = ids[-2]
    client.put_object(Bucket=bucket, Key=f"site/app/{failed}.drill.json", Body=json.dumps({"ok": False}).encode())
    bystanders = [f"site/app-old/{ids[0]}.manifest.json", f"site/{ids[0]}.manifest.json", f"other/app/{ids[0]}.dump.zst", "site/app/notes.txt"]
    for key in bystanders:
        client.put_object(Bucket=bucket, Key=key, Body=b"keep me")
    stale = client.create_multipart_upload(Bucket=bucket, Key=f"site/app/{ids[-1]}-crashed.dump.zst")["UploadId"]
    elsewhere = client.create_multipart_upload(Bucket=bucket, Key="other/app/x.dump.zst")["UploadId"]

    params = {"database": "app", "prefix": "site", "keep_last": 5, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 12,
              "keep_yearly": 0, "stale_upload_hours": 0, **s3.args(bucket)}
    planned = run_task(pg_backup.BACKUP_PRUNE, params, check_mode=True)
    assert planned["changed"] and s3.keys(bucket, "site/app/").count(f"site/app/{ids[0]}.dump.zst") == 1
    assert planned["keep"][verified] == ["newest_verified"]
    assert "newest" in planned["keep"][ids[-1]]
    assert len(planned["keep"]) == 5 + 12 + 1 - 1  # the newest month's pick is one of the last five
    assert planned["incomplete"] == [f"site/app/{ids[-1]}-crashed.dump.zst"]

    s3.proxy.reset()
    done = run_task(pg_backup.BACKUP_PRUNE, params)
    assert done["delete"] == planned["delete"] and done["keep"] == planned["keep"]
    deleted = len(done["delete"])
    batches = [path for method, path in s3.proxy.requests if method == "POST" and path.endswith("?delete")]
    assert len(batches) == math.ceil(deleted / 1000) + math.ceil((deleted + 1) / 1000)
    remaining = s3.keys(bucket)
    for key in bystanders:
        assert key in remaining
    assert {key.split("/")[-1].split(".")[0] for key in remaining if key.startswith("site/app/") and key.endswith(".manifest.json")} == set(planned["keep"])
    uploads = {upload["UploadId"] for upload in s3.uploads(bucket)}
    assert stale not in uploads and elsewhere in uploads

    again = run_task(pg_backup.BACKUP_PRUNE, params, check_mode=True)
    assert again["changed"] is False and again["delete"] == []


def test_backup_prunes_after_itself_but_never_the_newest(postgres, pg_database, tmp_path):
    store = {"directory": str(tmp_path / "b"), "keep_last": 2, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    results = [backup(postgres.args(pg_database, **store)) for _attempt in range(4)]
    assert [result["prune"]["delete"] for result in results] == [[], [], [results[0]["backup_id"]], [results[1]["backup_id"]]]
    info = run_task(pg_backup.BACKUP_INFO, {"database": pg_database, "directory": store["directory"]})
    assert [entry["id"] for entry in info["backups"]] == [results[2]["backup_id"], results[3]["backup_id"]]
