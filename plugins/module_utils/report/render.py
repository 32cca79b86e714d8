"""The fleet report: host records merged into one JSON document and one self-contained HTML page.

Statuses rank ok < warning < unknown < unreachable < critical; hosts are listed worst first.
Every item is judged against the time of rendering: one observed longer ago than its ttl is
stale, shown as UNKNOWN (a critical one stays critical), never green. A host the play could
not reach keeps its items from the previous report, judged again, so its age shows.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
import time

from ..foundation import durations
from ..foundation.tasks import Task
from ..foundation.timestamps import epoch, iso
from .record import LIVE_TTL as DEFAULT_TTL  # what the page leaves out of each item

REPORT_VERSION = 1
ORDER = {"ok": 0, "warning": 1, "unknown": 2, "unreachable": 3, "critical": 4}


def judge(entry, now):
    """An item as of now: its age, whether it is stale, and the status to show."""
    reported = entry.get("reported", entry["status"])
    observed = epoch(entry.get("observed_at"))
    age = None if observed is None else now - observed
    stale = bool(entry.get("ttl") and age is not None and age > entry["ttl"])
    status = reported
    message = entry["message"].split(" | stale: ", 1)[0]
    if stale:
        status = reported if ORDER[reported] > ORDER["unknown"] else "unknown"
        message += f" | stale: observed {durations.rough(age)} ago, expected every {durations.rough(entry['ttl'])}"
    judged = {**entry, "status": status, "message": message}
    judged.pop("stale", None)
    judged.pop("reported", None)
    if stale:  # only then: a thousand hosts' items stay small
        judged.update(stale=True, reported=reported)
    return judged


def _host(name, groups, record, now, reachable=True, error=None):
    items = [judge(entry, now) for entry in (record or {}).get("items", [])]
    problems = sorted((entry for entry in items if entry["status"] != "ok"), key=lambda entry: -ORDER[entry["status"]])
    errors = list((record or {}).get("errors", []))
    if error:
        errors.insert(0, error)
    if not reachable:
        state = "unreachable"
    else:
        # What could not be read is unknown, never ok.
        state = max([problems[0]["status"] if problems else "ok"] + (["unknown"] if errors or not items else []), key=ORDER.__getitem__)
    observed = epoch((record or {}).get("observed_at"))
    return {
        "host": name, "groups": sorted(groups), "state": state, "reachable": reachable,
        "observed_at": (record or {}).get("observed_at"), "age": None if observed is None else round(now - observed),
        "runtime": (record or {}).get("runtime", False), "errors": errors,
        "counts": {status: sum(1 for entry in items if entry["status"] == status) for status in ORDER if status != "unreachable"},
        "problems": len(problems), "items": items,
    }


def build(records, inventory=None, unreachable=(), previous=None, notes=(), now=None):
    """records: {host: record}; inventory: {host: [groups]} (hosts without a record are unreachable)."""
    now = now or time.time()
    inventory = dict(inventory or {host: [] for host in records})
    for host in records:
        inventory.setdefault(host, [])
    notes = list(notes)
    last = {entry["host"]: entry for entry in (previous or {}).get("hosts", [])}
    hosts = []
    for name, groups in inventory.items():
        if name in records and name not in unreachable:
            hosts.append(_host(name, groups, records[name], now))
            continue
        before = last.get(name)
        if before:
            record = {"observed_at": before["observed_at"], "items": before["items"], "runtime": before.get("runtime"),
                      "errors": [e for e in before.get("errors", []) if not e.startswith("unreachable")]}
            error = f"unreachable: showing its last record, from the previous report, {durations.rough(now - epoch(before['observed_at']))} old" \
                if before.get("observed_at") else "unreachable: the previous report has no record of it"
        else:
            record, error = None, "unreachable: no previous record of this host"
        hosts.append(_host(name, groups, record, now, reachable=False, error=error))
    hosts.sort(key=lambda entry: (-ORDER[entry["state"]], -entry["problems"], entry["host"]))
    if not any(entry["reachable"] for entry in hosts):
        notes.append("no host was reachable: every entry is a last known record or empty")
    groups = {}
    for entry in hosts:
        for group in entry["groups"] or ["ungrouped"]:
            summary = groups.setdefault(group, {"hosts": 0, **dict.fromkeys(ORDER, 0)})
            summary["hosts"] += 1
            summary[entry["state"]] += 1
    return {
        "version": REPORT_VERSION, "generated_at": iso(now), "notes": notes,
        "summary": {"hosts": len(hosts), **{status: sum(1 for entry in hosts if entry["state"] == status) for status in ORDER}},
        "groups": dict(sorted(groups.items())), "releases": releases(hosts), "changes": _changes(previous, hosts), "hosts": hosts,
    }


def releases(hosts):
    """{app: {"releases": {release: [hosts]}, "mixed": bool}}: which release each application
    serves where; mixed when its hosts serve more than one (a deploy stopped half way, a host
    left behind)."""
    found = {}
    for entry in hosts:
        for item in entry["items"]:
            if item["area"] == "deploy" and item.get("value"):
                found.setdefault(item["name"], {}).setdefault(item["value"], []).append(entry["host"])
    return {app: {"releases": dict(sorted(where.items())), "mixed": len(where) > 1} for app, where in sorted(found.items())}


def _changes(previous, hosts):
    """New problems and recoveries since the previous report, per host and item."""
    if not previous:
        return {"previous": None, "new": [], "recovered": []}

    def problems(entry):
        return {f"{item['area']}:{item['name']}": item for item in entry["items"] if item["status"] != "ok"}

    before = {entry["host"]: entry for entry in previous.get("hosts", [])}
    new, recovered = [], []
    for entry in hosts:
        old = before.get(entry["host"])
        was = problems(old) if old else {}
        now_bad = problems(entry)
        if old and old["state"] != entry["state"] and "unreachable" in (old["state"], entry["state"]):
            (new if entry["state"] == "unreachable" else recovered).append(
                {"host": entry["host"], "item": "host", "was": old["state"], "now": entry["state"]})
        for key, item in now_bad.items():
            if key not in was or ORDER[was[key]["status"]] < ORDER[item["status"]]:
                new.append({"host": entry["host"], "item": key, "was": was[key]["status"] if key in was else "ok", "now": item["status"]})
        if entry["reachable"]:
            for key, item in was.items():
                if key not in now_bad:
                    recovered.append({"host": entry["host"], "item": key, "was": item["status"], "now": "ok"})
    return {"previous": previous.get("generated_at"), "new": new, "recovered": recovered}


# -- reading inputs -------------------------------------------------------------------


def load_previous(path):
    """(previous report or None, note naming what was wrong or None)."""
    if not path or not os.path.exists(path):
        return None, f"no previous report at {path}: nothing to compare, unreachable hosts have no last record"
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        if not isinstance(report, dict) or not isinstance(report.get("hosts"), list):
            raise ValueError("not a caretaker fleet report (no hosts list)")
        return report, None
    except (OSError, ValueError) as exc:
        return None, f"previous report {path} is unreadable and was ignored: {exc}"


def load_records(directory):
    """({host: record}, notes) from the *.json files a (sliced) gather step wrote."""
    records, notes = {}, []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
            records[record.get("inventory_hostname") or record["host"]] = record
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            notes.append(f"record {path} is unreadable and was left out: {exc}")
    return records, notes


# -- writing ---------------------------------------------------------------------------


def write_atomic(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".report-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def to_json(report):
    return json.dumps(report, separators=(",", ":"), sort_keys=False)


def text_summary(report, lines=15):
    summary = report["summary"]
    out = [f"fleet report {report['generated_at']}: {summary['hosts']} hosts, "
           + ", ".join(f"{summary[status]} {status}" for status in reversed(ORDER) if summary[status])]
    out += [f"note: {note}" for note in report["notes"]]
    for app, served in report.get("releases", {}).items():
        where = "; ".join(f"{release} on {len(hosts)} ({', '.join(hosts[:3])}{', ...' if len(hosts) > 3 else ''})"
                          for release, hosts in served["releases"].items())
        out.append(f"{'MIXED ' if served['mixed'] else ''}release {app}: {where}")
    for entry in report["hosts"][:lines]:
        reasons = [f"{item['area']} {item['name']}: {item['message']}" for item in entry["items"] if item["status"] != "ok"][:2]
        reasons = entry["errors"][:1] + reasons if entry["errors"] else reasons
        out.append(f"{entry['state'].upper():<11} {entry['host']:<24} {'; '.join(reasons)[:140]}")
    if len(report["hosts"]) > lines:
        out.append(f"... and {len(report['hosts']) - lines} more hosts")
    changes = report["changes"]
    if changes["previous"]:
        out.append(f"since {changes['previous']}: {len(changes['new'])} new problems, {len(changes['recovered'])} recovered")
    return "\n".join(out)


def _compact(report):
    """The report as embedded in the page: an item observed with its host's record, or with a day's ttl, leaves that out."""
    hosts = []
    for host in report["hosts"]:
        items = []
        for entry in host["items"]:
            entry = dict(entry)
            if entry.get("observed_at") == host["observed_at"]:
                del entry["observed_at"]
            if entry.get("ttl") == DEFAULT_TTL:
                del entry["ttl"]
            items.append(entry)
        hosts.append({**host, "items": items})
    return {**report, "hosts": hosts}


def to_html(report):
    data = to_json(_compact(report)).replace("</", "<\\/")
    title = html.escape(f"Fleet report {report['generated_at']}")
    return PAGE.replace("__TITLE__", title).replace("__TTL__", str(DEFAULT_TTL)).replace("__DATA__", data)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.2em}
table{border-collapse:collapse;width:100%}th,td{padding:3px 6px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f3f3f3;user-select:none}th.sorted:after{content:" \\25BE"}
.s{display:inline-block;min-width:6.5em;padding:1px 4px;border-radius:3px;color:#fff;font-weight:600;text-align:center}
.ok{background:#2e7d32}.warning{background:#e69500}.critical{background:#c62828}.unknown{background:#6d6d8a}.unreachable{background:#37474f}
.stale{background:#6d6d8a;outline:2px dashed #c62828}
.why{margin:0;padding-left:1.1em}.why li{margin:1px 0}.age{color:#666;font-size:.9em}
.cards span{display:inline-block;margin-right:1em}.notes{background:#fff3cd;padding:.5em;border:1px solid #e6c200}
#filter{width:24em;padding:4px}.bars svg{display:block;margin:1px 0}small{color:#666}
tr.detail td{background:#fafafa}
</style></head><body>
<h1>__TITLE__</h1>
<noscript>This page draws its tables with JavaScript; the data is in the JSON beside it.</noscript>
<div id="notes"></div><div class="cards" id="cards"></div>
<h2>Groups</h2><table id="groups"></table>
<h2>Releases</h2><div id="releases"></div>
<h2>Changes since the previous report</h2><div id="changes"></div>
<h2>Hosts</h2>
<p><input id="filter" placeholder="filter: host, group, problem text" aria-label="filter">
<select id="state" aria-label="state"><option value="">every state</option><option>critical</option><option>unreachable</option>
<option>unknown</option><option>warning</option><option>ok</option><option value="stale">stale</option></select>
<span id="shown"></span></p>
<table id="hosts"><thead><tr><th data-k="rank" class="sorted">state</th><th data-k="host">host</th><th data-k="groups">groups</th>
<th data-k="problems">problems: why, observed</th><th data-k="backup">backup age / target</th><th data-k="disk">disk use</th>
<th data-k="cert">cert days left</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const R=JSON.parse(document.getElementById("data").textContent);
const NOW=Date.parse(R.generated_at)/1000;
R.hosts.forEach(h=>h.items.forEach(i=>{if(!("observed_at" in i))i.observed_at=h.observed_at;if(!("ttl" in i))i.ttl=__TTL__;}));
const ageOf=i=>i.observed_at?Math.max(0,Math.round(NOW-Date.parse(i.observed_at)/1000)):null;
const ORDER={ok:0,warning:1,unknown:2,unreachable:3,critical:4};
const esc=t=>String(t==null?"":t).replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
const ago=s=>s==null?"never":s>=86400?(s/86400).toFixed(1)+"d":s>=3600?(s/3600).toFixed(1)+"h":s>=60?(s/60).toFixed(0)+"m":s+"s";
const badge=(st,stale)=>'<span class="s '+(stale?"stale":st)+'">'+esc(st)+(stale?" (stale)":"")+"</span>";
const COLOR={ok:"#2e7d32",warning:"#e69500",critical:"#c62828",unknown:"#6d6d8a",unreachable:"#37474f"};
function bar(value,max,mark,it,label){
  if(value==null)return "";
  const w=120,f=Math.max(0,Math.min(1,value/max))*w,m=mark==null?null:Math.min(1,mark/max)*w;
  const c=it.stale?COLOR.unknown:COLOR[it.status];
  return '<svg width="'+w+'" height="12" role="img" aria-label="'+esc(label)+'"><title>'+esc(label)+'</title>'+
    '<rect width="'+w+'" height="12" fill="#eee"/><rect width="'+f.toFixed(1)+'" height="12" fill="'+c+'"/>'+
    (m==null?"":'<line x1="'+m.toFixed(1)+'" x2="'+m.toFixed(1)+'" y1="0" y2="12" stroke="#000" stroke-width="2"/>')+"</svg>";
}
const worstOf=(items,area,key)=>items.filter(i=>i.area===area&&i.value!=null).sort(key)[0];
const H=R.hosts.map(h=>{
  const b=worstOf(h.items,"backup",(a,c)=>c.value/c.target-a.value/a.target);
  const d=worstOf(h.items,"disk",(a,c)=>c.value-a.value);
  const c=worstOf(h.items,"cert",(a,x)=>a.value-x.value);
  const stale=h.items.some(i=>i.stale);
  const probs=()=>h.errors.map(e=>"<li>"+esc(e)+"</li>").concat(h.items.filter(i=>i.status!=="ok").map(i=>
    "<li>"+badge(i.status,i.stale)+" <b>"+esc(i.area)+" "+esc(i.name)+"</b>: "+esc(i.message)+
    ' <span class="age">observed '+ago(ageOf(i))+(i.observed_at?" ago":"")+"</span></li>")).join("");
  const text=()=>(h.host+" "+h.groups.join(" ")+" "+h.state+" "+h.errors.join(" ")+" "+
    h.items.filter(i=>i.status!=="ok").map(i=>i.area+" "+i.name+" "+i.message).join(" ")).toLowerCase();
  const html=()=>'<td>'+badge(h.state,false)+(stale?" <small>stale data</small>":"")+'</td><td><a href="#" class="host">'+esc(h.host)+
    '</a><br><small>record '+(h.age==null?"none":ago(h.age)+" old")+'</small></td><td>'+esc(h.groups.join(", "))+
    '</td><td><ul class="why">'+probs()+'</ul></td><td class="bars">'+
    (b?bar(b.value,Math.max(b.value,b.target/3600*2),b.target/3600,b,b.name+": "+b.value+"h of "+(b.target/3600)+"h")+
      "<small>"+esc(b.name)+" "+b.value+"h / "+(b.target/3600)+"h</small>":"")+
    '</td><td class="bars">'+(d?bar(d.value,100,d.critical,d,d.name+" "+d.value+"%")+"<small>"+esc(d.name)+" "+d.value+"%</small>":"")+
    '</td><td class="bars">'+(c?bar(Math.max(c.value,0),90,14,c,c.name+" "+c.value+" days")+"<small>"+c.value+" d</small>":"")+"</td>";
  return {h,text,html,stale,rank:ORDER[h.state]*1e6+h.problems,host:h.host,groups:h.groups.join(","),problems:h.problems,
    backup:b?b.value/(b.target/3600):-1,disk:d?d.value:-1,cert:c?-c.value:-1e9};
});
let sortKey="rank",sortDesc=true,showAll=false;const PAGE=150;
const tbody=document.querySelector("#hosts tbody");
function draw(){
  const q=document.getElementById("filter").value.toLowerCase().trim(),st=document.getElementById("state").value;
  const rows=H.filter(r=>(!q||q.split(/\\s+/).every(w=>(r._t=r._t||r.text()).includes(w)))&&(!st||(st==="stale"?r.stale:r.h.state===st)));
  rows.sort((a,b)=>{const x=a[sortKey],y=b[sortKey];const v=x<y?-1:x>y?1:0;return sortDesc?-v:v;});
  // Long fleets draw a page of rows first, so the page answers at once; the rest on demand.
  const page=showAll?rows:rows.slice(0,PAGE);
  tbody.innerHTML=page.map(r=>'<tr class="host-row" data-host="'+esc(r.host)+'" data-state="'+r.h.state+'">'+r.html()+"</tr>").join("")+
    (page.length<rows.length?'<tr><td colspan="7"><button id="more">show all '+rows.length+' hosts</button></td></tr>':"");
  document.getElementById("shown").textContent=rows.length+" of "+H.length+" hosts";
}
document.getElementById("filter").addEventListener("input",draw);
document.getElementById("state").addEventListener("change",draw);
document.querySelectorAll("#hosts th").forEach(th=>th.addEventListener("click",()=>{
  const k=th.dataset.k;sortDesc=k===sortKey?!sortDesc:(k==="rank"||k==="problems"||k==="backup"||k==="disk"||k==="cert");sortKey=k;
  document.querySelectorAll("#hosts th").forEach(t=>t.classList.toggle("sorted",t===th));draw();}));
tbody.addEventListener("click",e=>{
  if(e.target.id==="more"){showAll=true;draw();return;}
  const a=e.target.closest("a.host");if(!a)return;e.preventDefault();
  const tr=a.closest("tr"),next=tr.nextElementSibling;
  if(next&&next.classList.contains("detail")){next.remove();return;}
  const h=H.find(r=>r.host===tr.dataset.host).h,d=document.createElement("tr");d.className="detail";
  d.innerHTML='<td colspan="7"><table>'+h.items.map(i=>"<tr><td>"+badge(i.status,i.stale)+"</td><td>"+esc(i.area)+"</td><td>"+esc(i.name)+
    "</td><td>"+esc(i.message)+"</td><td>observed "+ago(ageOf(i))+(i.observed_at?" ago":"")+(i.ttl?", every "+ago(i.ttl):"")+
    "</td></tr>").join("")+"</table></td>";
  tr.after(d);});
const S=R.summary;
document.getElementById("cards").innerHTML="<span><b>"+S.hosts+"</b> hosts</span>"+
  Object.keys(ORDER).reverse().map(k=>'<span class="count" data-state="'+k+'">'+badge(k,false)+" <b>"+S[k]+"</b></span>").join("");
document.getElementById("notes").innerHTML=R.notes.length?
  '<div class="notes"><b>Could not read:</b><ul>'+R.notes.map(n=>"<li>"+esc(n)+"</li>").join("")+"</ul></div>":"";
document.getElementById("groups").innerHTML="<tr><th>group</th><th>hosts</th>"+Object.keys(ORDER).reverse().map(k=>"<th>"+k+"</th>").join("")+"</tr>"+
  Object.entries(R.groups).map(([g,s])=>"<tr><td>"+esc(g)+"</td><td>"+s.hosts+"</td>"+
    Object.keys(ORDER).reverse().map(k=>"<td>"+(s[k]?badge(k,false)+" "+s[k]:"")+"</td>").join("")+"</tr>").join("");
const REL=Object.entries(R.releases||{});
document.getElementById("releases").innerHTML=!REL.length?"<p>No application deployed by caretaker.</p>":
  "<ul>"+REL.map(([app,s])=>'<li data-app="'+esc(app)+'">'+(s.mixed?badge("warning",false)+" mixed ":"")+"<b>"+esc(app)+"</b>: "+
    Object.entries(s.releases).map(([rel,hs])=>esc(rel)+" on "+hs.length+" ("+esc(hs.slice(0,5).join(", "))+(hs.length>5?", ...":"")+")").join("; ")+
    "</li>").join("")+"</ul>";
const C=R.changes;
document.getElementById("changes").innerHTML=!C.previous?"<p>No previous report to compare with.</p>":
  "<p>Since "+esc(C.previous)+": "+C.new.length+" new problems, "+C.recovered.length+" recovered.</p><ul>"+
  C.new.map(c=>"<li>new: "+esc(c.host)+" "+esc(c.item)+" "+esc(c.was)+" &rarr; "+badge(c.now,false)+"</li>").join("")+
  C.recovered.map(c=>"<li>recovered: "+esc(c.host)+" "+esc(c.item)+" "+esc(c.was)+" &rarr; "+badge(c.now,false)+"</li>").join("")+"</ul>";
draw();
document.body.dataset.ready="1";
</script></body></html>
"""


def _fleet_report(args, ctx):
    records, notes = load_records(args["records_dir"])
    previous, note = load_previous(args["previous"] or args["json_path"])
    notes = ([note] if note else []) + notes + list(args["notes"])
    inventory = {host: list(groups or []) for host, groups in (args["inventory"] or {}).items()} or None
    report = build(records, inventory=inventory, unreachable=set(args["unreachable"]), previous=previous, notes=notes)
    if not ctx.check_mode:
        write_atomic(args["json_path"], to_json(report))
        write_atomic(args["html_path"], to_html(report))
    return {"changed": True, "summary": report["summary"], "groups": report["groups"], "releases": report["releases"],
            "changes": report["changes"], "notes": report["notes"], "text": text_summary(report),
            "html_path": args["html_path"], "json_path": args["json_path"]}


FLEET_REPORT = Task(
    name="fleet_report",
    argument_spec={
        "records_dir": {"type": "path", "required": True},
        "html_path": {"type": "path", "required": True},
        "json_path": {"type": "path", "required": True},
        "previous": {"type": "path"},
        "inventory": {"type": "dict", "default": {}},
        "unreachable": {"type": "list", "elements": "str", "default": []},
        "notes": {"type": "list", "elements": "str", "default": []},
    },
    run=_fleet_report,
)
