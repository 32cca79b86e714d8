"""The fleet report: records read from real host layouts filled by the job runner, merged,
rendered, and opened in a real headless chromium."""

import json
import pathlib
import time

import pytest
from caretaker.foundation.config import Settings
from caretaker.foundation.ledger import Ledger
from caretaker.report import record, render
from fixtures.ports import free_port

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "output"


@pytest.fixture
def sick_host(caretaker_host, pki):
    """A host whose runner found a dead-lettered job, a closed port and a certificate 5 days from expiry."""
    cert, _key = pki.leaf(pki.root(), "shop.example.test", start=-85, lifetime=90)
    caretaker_host.add_job("flaky", kind="command", args={"argv": ["sh", "-c", "exit 75"]}, retry={"attempts": 2, "backoff": 0.01},
                           schedule="*/10 * * * *")
    caretaker_host.add_job("web-port", kind="health_check", schedule="*/5 * * * *",
                           args={"probes": [{"type": "tcp", "host": "127.0.0.1", "port": free_port()}]})
    caretaker_host.add_job("certs", kind="cert_check", schedule="17 */6 * * *", args={"files": [pki.pem("shop.pem", cert)]})
    caretaker_host.add_job("heartbeat", kind="noop", schedule="* * * * *")
    for job in ("flaky", "web-port", "certs", "heartbeat"):
        caretaker_host.run(job)
    return caretaker_host


def test_a_record_names_each_problem_with_when_and_for_how_long(sick_host):
    rec = record.collect(str(sick_host.etc), live_updates=False)
    assert rec["runtime"] is True and rec["host"] == "testhost"
    items = {(entry["area"], entry["name"]): entry for entry in rec["items"]}
    assert items[("job", "flaky")]["status"] == "critical"
    assert items[("dead_letters", "dead letters")]["status"] == "critical" and "flaky" in items[("dead_letters", "dead letters")]["message"]
    assert items[("job", "web-port")]["status"] == "critical" and "refused" in items[("job", "web-port")]["message"].lower()
    assert items[("job", "web-port")]["ttl"] == 5 * 60 * 1.1 + 300
    cert = next(entry for entry in rec["items"] if entry["area"] == "cert")
    assert cert["status"] == "critical" and cert["value"] == pytest.approx(5, abs=0.1)
    assert items[("job", "heartbeat")]["status"] == "ok"
    assert any(entry["area"] == "disk" and entry["name"] == "/" for entry in rec["items"]) or rec["items"]
    assert all(entry["observed_at"] for entry in rec["items"] if entry["area"] != "job" or entry["status"] != "unknown")
    assert rec["status"] == "critical"


def test_host_report_module_returns_the_record(sick_host, run_module):
    result = run_module("host_report", {"etc": str(sick_host.etc), "live_updates": False}, check=True)
    assert result["changed"] is False
    assert {entry["name"] for entry in result["record"]["items"] if entry["area"] == "job"} == {"flaky", "web-port", "certs", "heartbeat"}


def _fleet(tmp_path, sick_host, now=None):
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    sick = record.collect(str(sick_host.etc), live_updates=False, now=now)
    (records / "web1.json").write_text(json.dumps({**sick, "inventory_hostname": "web1"}))
    bare = record.collect(str(tmp_path / "no-such-etc"), live_updates=False)
    (records / "bare1.json").write_text(json.dumps({**bare, "inventory_hostname": "bare1"}))
    return records


def test_fleet_report_worst_first_unreachable_keeps_its_last_record_and_bad_input_is_named(tmp_path, sick_host, run_module):
    records = _fleet(tmp_path, sick_host)
    html, out = tmp_path / "out" / "fleet.html", tmp_path / "out" / "fleet.json"
    args = {"records_dir": str(records), "html_path": str(html), "json_path": str(out),
            "inventory": {"web1": ["web"], "bare1": ["web"], "db1": ["db"]}, "unreachable": ["db1"]}
    first = run_module("fleet_report", args)
    assert first["changed"] is True
    report = json.loads(out.read_text())
    assert [host["host"] for host in report["hosts"]][:2] == ["web1", "db1"]
    assert report["hosts"][1]["state"] == "unreachable" and "no previous record" in report["hosts"][1]["errors"][0]
    bare = next(host for host in report["hosts"] if host["host"] == "bare1")
    assert bare["state"] == "unknown" and "caretaker runtime not installed" in bare["errors"][0]
    assert any("no previous report" in note for note in report["notes"])
    assert report["groups"]["web"]["critical"] == 1 and report["groups"]["db"]["unreachable"] == 1

    # Next run: web1 is unreachable and keeps its last record; db1 answers; a corrupt record file is named.
    (records / "db1.json").write_text(json.dumps({**record.collect(str(sick_host.etc), live_updates=False), "inventory_hostname": "db1"}))
    (records / "web1.json").unlink()
    (records / "broken.json").write_text("{not json")
    second = run_module("fleet_report", {**args, "unreachable": ["web1"]})
    report = json.loads(out.read_text())
    web1 = next(host for host in report["hosts"] if host["host"] == "web1")
    assert web1["state"] == "unreachable" and web1["items"] and "last record" in web1["errors"][0]
    assert any("broken.json" in note for note in second["notes"])
    assert any(change["host"] == "web1" and change["now"] == "unreachable" for change in report["changes"]["new"])
    assert "UNREACHABLE" in second["text"]

    # A corrupt previous report: still a report, and the note says so; check mode writes nothing.
    out.write_text("garbage")
    before = html.stat().st_mtime_ns
    third = run_module("fleet_report", args, check=True)
    assert any("unreadable" in note for note in third["notes"]) and html.stat().st_mtime_ns == before
    run_module("fleet_report", args)
    assert any("unreadable and was ignored" in note for note in json.loads(out.read_text())["notes"])


def test_no_reachable_host_still_writes_a_report(tmp_path, run_module):
    (tmp_path / "records").mkdir()
    result = run_module("fleet_report", {"records_dir": str(tmp_path / "records"), "html_path": str(tmp_path / "r.html"),
                                         "json_path": str(tmp_path / "r.json"), "inventory": {"a": [], "b": []}, "unreachable": ["a", "b"]})
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["unreachable"] == 2 and any("no host was reachable" in note for note in result["notes"])
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_stale_data_is_never_green(tmp_path, sick_host):
    """Observations older than their interval: stale and UNKNOWN in the JSON, marked stale in the page."""
    two_days_ago = time.time() - 2 * 86400
    rec = record.collect(str(sick_host.etc), live_updates=False, now=two_days_ago)
    report = render.build({"old1": rec})
    host = report["hosts"][0]
    disk = next(entry for entry in host["items"] if entry["area"] == "disk")
    assert disk["reported"] == "ok" and disk["stale"] is True and disk["status"] == "unknown" and "stale" in disk["message"]
    assert not [entry for entry in host["items"] if entry.get("stale") and entry["status"] == "ok"]
    fresh = render.build({"new1": record.collect(str(sick_host.etc), live_updates=False)})["hosts"][0]
    assert not any(entry.get("stale") for entry in fresh["items"] if entry["area"] == "disk")
    page = render.to_html(report)
    assert '"stale":true' in page


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def test_the_page_in_a_real_browser_orders_counts_filters_and_shows_stale(tmp_path, sick_host, browser):
    from selenium.webdriver.common.by import By

    ledger = Ledger(Settings.load(str(sick_host.etc)).database)  # the journal of a deploy of shop v7 that went through
    ledger.record_deploy("d7", "shop", "deploy", release="v7", previous="v6", outcome="ok", ended=time.time())
    ledger.close()
    records = _fleet(tmp_path, sick_host)
    old = record.collect(str(sick_host.etc), live_updates=False, now=time.time() - 3 * 86400)
    next(entry for entry in old["items"] if entry["area"] == "deploy")["value"] = "v6"  # a host left behind on v6
    (records / "old1.json").write_text(json.dumps({**old, "inventory_hostname": "old1"}))
    records_, _notes = render.load_records(str(records))
    report = render.build(records_, inventory={"web1": ["web"], "bare1": ["web"], "old1": ["db"], "gone1": ["db"]}, unreachable={"gone1"})
    page = tmp_path / "fleet.html"
    page.write_text(render.to_html(report))
    browser.get(page.as_uri())
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
    rows = browser.find_elements(By.CSS_SELECTOR, "#hosts tr.host-row")
    shown = [(row.get_attribute("data-host"), row.get_attribute("data-state")) for row in rows]
    assert [state for _host, state in shown] == sorted((s for _h, s in shown), key=lambda s: -render.ORDER[s])
    assert shown[0][1] == "critical" and ("gone1", "unreachable") in shown and ("bare1", "unknown") in shown
    counts = {card.get_attribute("data-state"): card.text.split()[-1] for card in browser.find_elements(By.CSS_SELECTOR, ".count")}
    assert counts["unreachable"] == "1" and int(counts["critical"]) == report["summary"]["critical"]
    old_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-host="old1"]')
    assert "stale" in old_row.text and old_row.find_elements(By.CSS_SELECTOR, ".s.stale")
    assert old_row.find_elements(By.CSS_SELECTOR, "svg")  # the inline bars are drawn
    shop = browser.find_element(By.CSS_SELECTOR, '#releases li[data-app="shop"]')
    assert "mixed" in shop.text and "v6 on 1 (old1); v7 on 1 (web1)" in shop.text and shop.find_elements(By.CSS_SELECTOR, ".s.warning")
    OUTPUT.mkdir(exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "fleet-report.png"))
    assert (OUTPUT / "fleet-report.png").stat().st_size > 10000
    browser.find_element(By.ID, "filter").send_keys("dead letters")
    visible = [row.get_attribute("data-host") for row in browser.find_elements(By.CSS_SELECTOR, "#hosts tr.host-row")]
    assert visible and "bare1" not in visible and "gone1" not in visible
    assert browser.find_element(By.ID, "shown").text == f"{len(visible)} of 4 hosts"
