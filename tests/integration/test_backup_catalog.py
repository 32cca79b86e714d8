"""The catalog's read-change-write against a real S3 server and a directory: writers never lose each other's changes."""

import concurrent.futures
import json

import pytest
from caretaker.foundation import argspec
from caretaker.foundation.errors import ConfigError
from caretaker.lib import backup_store


def open_store(params):
    return backup_store.open_store(argspec.validate(backup_store.STORE_SPEC, params))


def add_entries(store, key, writer, count):
    def change(document):
        document = document or {"entries": []}
        document["entries"].append(f"{writer}-{len(document['entries'])}")
        return document

    for _number in range(count):
        store.update_json(key, change)


@pytest.mark.parametrize("destination", ["s3", "local"])
def test_concurrent_writers_lose_no_change(destination, s3, tmp_path):
    params = s3.args(s3.create_bucket()) if destination == "s3" else {"directory": str(tmp_path / "store")}
    key = "db/catalog.json"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        # each writer its own store, as separate processes or hosts would have
        list(pool.map(lambda writer: add_entries(open_store(params), key, writer, 10), range(4)))
    document = open_store(params).get_json(key)
    assert len(document["entries"]) == 40
    assert {entry.split("-")[0] for entry in document["entries"]} == {"0", "1", "2", "3"}


def test_a_change_that_changes_nothing_writes_nothing(s3):
    bucket = s3.create_bucket()
    store = open_store(s3.args(bucket))
    store.update_json("db/catalog.json", lambda document: {"n": 1})
    s3.proxy.reset()
    assert store.update_json("db/catalog.json", lambda document: None) == {"n": 1}
    assert [method for method, _path in s3.proxy.requests] == ["GET"]
    assert json.loads(s3.client().get_object(Bucket=bucket, Key="db/catalog.json")["Body"].read()) == {"n": 1}


def test_a_missing_bucket_is_named_without_a_separate_check(s3):
    store = open_store(s3.args("no-such-bucket"))
    with pytest.raises(ConfigError, match=r"bucket: cannot read .*the bucket does not exist"):
        store.get_json("db/catalog.json")
