"""The backup modules through Ansible: check mode predicts and changes nothing."""


def test_backup_modules_through_ansible(postgres, pg_database, tmp_path, run_module):
    store = {"directory": str(tmp_path / "backups")}
    planned = run_module("pg_backup", postgres.args(pg_database, **store), check=True)
    assert planned["changed"] is True and planned["destination"].endswith(f"/{pg_database}/")
    assert not (tmp_path / "backups").exists()

    done = run_module("pg_backup", postgres.args(pg_database, **store))
    assert done["changed"] is True and done["tables"] == 3, done
    assert postgres.password not in str(done)

    info = run_module("backup_info", {"database": pg_database, **store}, check=True)
    assert info["changed"] is False and info["latest"] == done["backup_id"]
    assert info["backups"][0]["manifest"]["sha256"] == done["sha256"]

    prune = run_module("backup_prune", {"database": pg_database, "keep_last": 1, **store}, check=True)
    assert prune["changed"] is False and list(prune["keep"]) == [done["backup_id"]]

    target = pg_database + "_ansible"
    restored = run_module("pg_restore", postgres.args(pg_database, target=target, **store))
    assert restored["changed"] is True and restored["backup_id"] == done["backup_id"]
    assert target in postgres.databases()


def test_backup_module_names_the_bad_field(postgres, pg_database, tmp_path, run_module):
    result = run_module("pg_backup", postgres.args(pg_database, directory=str(tmp_path), recipients=["nope"]))
    assert result["failed"] is True and "recipients[0]" in result["msg"]
    result = run_module("pg_backup", postgres.args(pg_database, destination="tape"))
    assert result["failed"] is True and "destination" in result["msg"]
