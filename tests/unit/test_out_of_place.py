"""The compare-first filter the roles skip their writes with: what differs is found, nothing else."""

import hashlib
import importlib.util
import pathlib

import pytest
from ansible.errors import AnsibleFilterError

_spec = importlib.util.spec_from_file_location(
    "in_place", pathlib.Path(__file__).resolve().parents[2] / "plugins" / "filter" / "in_place.py")
in_place = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(in_place)
out_of_place = in_place.out_of_place

TEXT = "daily\nrotate 7\n"


def found(*entries):
    return {"files": list(entries)}


def a_file(path, mode="0644", text=TEXT, owner="root"):
    return {"path": path, "isreg": True, "isdir": False, "islnk": False, "mode": mode, "pw_name": owner,
            "gr_name": "root", "checksum": hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()}


def a_dir(path, mode="0755"):
    return {"path": path, "isreg": False, "isdir": True, "islnk": False, "mode": mode, "pw_name": "root", "gr_name": "root"}


WANT = [{"path": "/etc/app", "state": "directory", "mode": "0755"},
        {"path": "/etc/app/app.conf", "mode": "0644", "content": TEXT}]


def test_everything_as_wanted_is_in_place():
    assert out_of_place(found(a_dir("/etc/app"), a_file("/etc/app/app.conf"), a_file("/etc/app/other")), WANT) == []


@pytest.mark.parametrize("entries, differs", [
    ((a_dir("/etc/app"),), ["/etc/app/app.conf"]),  # missing
    ((a_dir("/etc/app"), a_file("/etc/app/app.conf", text="edited\n")), ["/etc/app/app.conf"]),  # content
    ((a_dir("/etc/app"), a_file("/etc/app/app.conf", mode="0666")), ["/etc/app/app.conf"]),  # mode
    ((a_dir("/etc/app"), a_file("/etc/app/app.conf", owner="nobody")), ["/etc/app/app.conf"]),  # owner
    ((a_file("/etc/app"), a_file("/etc/app/app.conf")), ["/etc/app"]),  # a file where a directory belongs
    ((a_dir("/etc/app", mode="0777"), a_file("/etc/app/app.conf")), ["/etc/app"]),
])
def test_what_differs_is_named(entries, differs):
    assert out_of_place(found(*entries), WANT) == differs


def test_a_checksum_stands_for_content_and_links_need_only_exist():
    archive = a_file("/opt/x.tar", mode="0600", text="tar bytes")
    link = {"path": "/opt/bin/python3", "isreg": False, "isdir": False, "islnk": True, "mode": "0777",
            "pw_name": "root", "gr_name": "root"}
    want = [{"path": "/opt/x.tar", "mode": "0600", "checksum": archive["checksum"]}, {"path": "/opt/bin/python3", "state": "link"}]
    assert out_of_place(found(archive, link), want) == []
    assert out_of_place(found(link), want) == ["/opt/x.tar"]
    assert out_of_place(found(archive), want) == ["/opt/bin/python3"]


@pytest.mark.parametrize("result, want, message", [
    ({"msg": "nothing"}, WANT, "registered result of ansible.builtin.find"),
    (found(), [{"mode": "0644"}], "needs a path"),
    (found(), [{"path": "/x", "state": "fifo"}], "/x: state must be one of file, directory, link"),
])
def test_bad_input_is_refused_naming_what_is_wrong(result, want, message):
    with pytest.raises(AnsibleFilterError, match=message):
        out_of_place(result, want)
