"""Restore drills through the job runner, and pruning a long history in S3."""

import datetime
import json
import math
import sqlite3

from backup_helpers import backup, local_catalog, run_task, s3_catalog, seed_s3_history
from caretaker.backup import pg_backup


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
    folder = tmp_path / "backups" / pg_database
    catalog = local_catalog(folder)
    assert catalog["backups"][backup_id]["drill"]["ok"] is True
    manifest = catalog["backups"][backup_id]
    finished = datetime.datetime.fromisoformat(manifest["finished"].replace("Z", "+00:00")).timestamp()
    metric = (caretaker_host.metrics / f"caretaker_backup_verified_{pg_database}.prom").read_text()
    assert f'caretaker_backup_last_verified_timestamp_seconds{{database="{pg_database}"}} {float(finished)!r}' in metric
    with sqlite3.connect(caretaker_host.state / "state.db") as db:
        assert db.execute("SELECT backup_id, ok FROM backup_drills").fetchall() == [(backup_id, 1)]
    info = run_task(pg_backup.BACKUP_INFO, {"database": pg_database, **store})
    assert info["latest_verified"] == backup_id

    # A manifest that disagrees with what restores: the drill fails, says why, and cleans up.
    manifest["tables"]["public.users"] = 2999
    (folder / "catalog.json").write_text(json.dumps(catalog))
    code, report = caretaker_host.run("drill")
    assert code == 1 and "row counts differ from the manifest in 1 tables" in report["error"]
    stored = local_catalog(folder)["backups"][backup_id]["drill"]
    assert stored["ok"] is False and stored["mismatches"] == {"public.users": {"manifest": 2999, "restored": 3000}}
    assert postgres.databases() == before
    assert caretaker_host.status()["jobs"]


def test_prune_plans_exactly_and_deletes_in_batches_inside_its_prefix(s3):
    bucket = s3.create_bucket()
    client = s3.client()
    newest = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    crashed = "site/app/20200101T000000000Z-abcdef.dump.zst"
    # the newest backup that passed a drill is old (index 100); it must survive; a failed drill protects nothing
    ids = seed_s3_history(client, bucket, "site/app/", [newest - datetime.timedelta(days=day, minutes=day % 7) for day in range(1300)],
                          drills={100: True, -2: False}, pending={crashed: newest - datetime.timedelta(days=3)})
    verified = ids[100]
    bystanders = [f"site/app-old/{ids[0]}.dump.zst", f"site/{ids[0]}.dump.zst", f"other/app/{ids[0]}.dump.zst", "site/app/notes.txt"]
    for key in bystanders:
        client.put_object(Bucket=bucket, Key=key, Body=b"keep me")
    stale = client.create_multipart_upload(Bucket=bucket, Key=crashed)["UploadId"]
    elsewhere = client.create_multipart_upload(Bucket=bucket, Key="other/app/x.dump.zst")["UploadId"]

    params = {"database": "app", "prefix": "site", "keep_last": 5, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 12,
              "keep_yearly": 0, "stale_upload": "1d", **s3.args(bucket)}
    s3.proxy.reset()
    planned = run_task(pg_backup.BACKUP_PRUNE, params, check_mode=True)
    assert [method for method, _path in s3.proxy.requests] == ["GET"], "check mode reads the catalog and nothing else"
    assert planned["changed"] and f"site/app/{ids[0]}.dump.zst" in s3.keys(bucket, "site/app/")
    assert planned["keep"][verified] == ["newest_verified"]
    assert "newest" in planned["keep"][ids[-1]]
    assert len(planned["keep"]) == 5 + 12 + 1 - 1  # the newest month's pick is one of the last five
    assert planned["abandoned"] == [crashed]

    s3.proxy.reset()
    done = run_task(pg_backup.BACKUP_PRUNE, params)
    assert done["delete"] == planned["delete"] and done["keep"] == planned["keep"]
    deleted = len(done["delete"])
    batches = [path for method, path in s3.proxy.requests if method == "POST" and path.endswith("?delete")]
    # the deleted backups in batches of 1,000, and the crashed run's key (after aborting its upload)
    assert len(batches) == math.ceil(deleted / 1000) + 1
    assert done["requests"] == len(s3.proxy.requests) == 2 + len(batches) + 2  # catalog GET and PUT; list and abort the upload
    remaining = s3.keys(bucket)
    for key in bystanders:
        assert key in remaining
    assert {key.split("/")[-1].split(".")[0] for key in remaining if key.startswith("site/app/") and key.endswith(".dump.zst")} == set(planned["keep"])
    catalog = s3_catalog(client, bucket, "site/app/")
    assert sorted(catalog["backups"]) == sorted(planned["keep"]) and catalog["pending"] == {}
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
