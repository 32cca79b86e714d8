"""What playbooks/site.yml costs as a fleet grows: 5, 10 and 20 systemd containers over SSH.

For each size, fresh containers (Debian 12 and 13 alternating) booted from a fresh Debian
server's packages (systemd, python3, openssh-server, sudo: tests/harness/fresh-host-packages.txt,
none of the packages the roles install), each publishing sshd on a free 127.0.0.1 port; ansible-playbook reaches them over SSH with
ControlPersist, as a real fleet is reached. Per size: the first converge and a second one,
which must report changed=0 on every host; wall time, time per host, peak controller
memory (ansible-playbook and every fork it starts); and two floors on the same hosts, plays
that do nothing (facts only; the no-change run's shape of pings and skipped tasks): how
much of the growth is Ansible's own cost per host on this machine. Then, on the smallest fleet, no-change
runs interleaved side by side: pipelining on against off, SSH against the podman
connection; a first converge of a fresh fleet of that size from a wheelhouse built on
the controller, beside the first converge from the public index; and the first and no-change
runs on hosts of the test image, which carries the roles' Debian packages already. Goals (exit 1 when missed): changed=0 on every host of every second converge;
20 hosts at most 2.5x the time of 5 (first converge and no-change run); a no-change run
under a quarter of the first converge on the same hosts.

    make bench NAME=fleet                      # sizes 5 10 20
    FLEET_SIZES="5 10" make bench NAME=fleet   # a shorter run
    FLEET_FORKS=20                             # ansible forks (default 20)
    FLEET_COMPARE=0                            # the sizes only, without the side-by-side runs

Every container this run starts carries the label caretaker.bench=fleet-PID and is removed
when the bench ends, whether it succeeds, fails or is interrupted.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

from common import RESULTS, ROOT, environment

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.ports import free_port

FRESH_IMAGE = "localhost/caretaker-fresh"
PREINSTALLED_IMAGES = ("localhost/caretaker-test:debian12", "localhost/caretaker-test:debian13")
SSH_IMAGE = "localhost/caretaker-fleet-ssh"
LABEL = f"caretaker.bench=fleet-{os.getpid()}"
SIZES = [int(size) for size in os.environ.get("FLEET_SIZES", "5 10 20").split()]
FORKS = int(os.environ.get("FLEET_FORKS", "20"))
SIDE_BY_SIDE_REPEAT = int(os.environ.get("FLEET_SIDE_BY_SIDE_REPEAT", "1"))
COMPARE = os.environ.get("FLEET_COMPARE", "1") != "0"  # 0: the sizes only, no side-by-side runs
SITE = ROOT / "playbooks" / "site.yml"
# The floors: plays that do nothing, what Ansible itself costs per host on this machine
# whatever the roles do. Facts only; and the shape of site.yml's no-change run (facts, then
# per host 10 tasks that reach the host and 43 that do not). Name: (reaching, skipped).
FLOORS = {"facts only": (0, 0), "no-change shape": (10, 43)}
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

_started: list[str] = []


def podman(*argv, check=True, capture=True):
    proc = subprocess.run(["podman", *argv], capture_output=capture, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"podman {' '.join(argv[:3])}: {proc.stderr.strip()}")
    return proc.stdout.strip() if capture else ""


def remove_containers():
    """Remove every container this run started (never anyone else's)."""
    names, _started[:] = list(_started), []
    if names:
        subprocess.run(["podman", "rm", "--force", "--ignore", "--time", "2", *names], capture_output=True, check=False)


def _on_signal(signum, _frame):
    remove_containers()
    sys.exit(128 + signum)


def fresh_images() -> list:
    """The fresh-server images, built (or found up to date) by the test images' own builder."""
    env = {**os.environ, "CARETAKER_IMAGE": FRESH_IMAGE,
           "CARETAKER_IMAGE_PACKAGES": str(ROOT / "tests" / "harness" / "fresh-host-packages.txt")}
    subprocess.run([str(ROOT / "tests" / "harness" / "build-images.sh"), "debian12", "debian13"], env=env, check=True)
    return [f"{FRESH_IMAGE}:debian12", f"{FRESH_IMAGE}:debian13"]


def ssh_image(base: str) -> str:
    """The base test image with openssh-server, built once per base image (tagged by its id)."""
    base_id = podman("image", "inspect", "--format", "{{.Id}}", base)[:12]
    tag = f"{SSH_IMAGE}:{base.rsplit('/', 1)[1].replace(':', '-')}-{base_id}"
    if subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0:
        return tag
    builder = f"caretaker-fleet-build-{os.getpid()}"
    _started.append(builder)
    print(f"building {tag} (openssh-server on {base})", flush=True)
    podman("run", "--name", builder, "--label", LABEL, base, "sh", "-c",
           "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
           "openssh-server >/dev/null && mkdir -p /root/.ssh && chmod 700 /root/.ssh")
    podman("commit", "--change", 'CMD ["/sbin/init"]', builder, tag)
    podman("rm", "--force", builder)
    _started.remove(builder)
    return tag


class Fleet:
    """N running containers, an inventory reaching them over SSH and one over podman."""

    def __init__(self, size: int, images: list, workdir: pathlib.Path, key: pathlib.Path, tag: str = "", extra_vars=None):
        self.size, self.workdir, self.tag, self.extra_vars = size, workdir, tag, extra_vars or {}
        self.hosts = {}
        for index in range(size):
            name = f"caretaker-fleet-{os.getpid()}-{size}{tag}-{index}"
            port = free_port()
            _started.append(name)
            podman("run", "--detach", "--name", name, "--hostname", f"fleet{index}", "--systemd=always", "--label", LABEL,
                   "--publish", f"127.0.0.1:{port}:22", images[index % len(images)], "/sbin/init")
            self.hosts[name] = port
        for name in self.hosts:
            podman("exec", name, "systemctl", "is-system-running", "--wait", check=False)
            podman("cp", str(key.with_suffix(".pub")), f"{name}:/root/.ssh/authorized_keys")
            # apt's own timers at boot would hold the dpkg lock while the converge wants it.
            podman("exec", name, "sh", "-c", "chown root:root /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys "
                   "&& systemctl start ssh && systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service "
                   "apt-daily-upgrade.service 2>/dev/null || true")
        self.ssh_inventory = self._inventory("ssh", key)
        self.podman_inventory = self._inventory("podman", key)

    def _inventory(self, connection: str, key: pathlib.Path) -> pathlib.Path:
        hosts = {}
        for name, port in self.hosts.items():
            if connection == "ssh":
                hosts[name] = {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root",
                               "ansible_ssh_private_key_file": str(key)}
            else:
                hosts[name] = {"ansible_connection": "containers.podman.podman"}
        # A fleet as the README describes it: jobs everywhere, monitoring, hygiene and patching groups.
        everything = {name: {} for name in hosts}
        inventory = {"all": {
            "hosts": hosts,
            "vars": {
                "ansible_python_interpreter": "/usr/bin/python3",
                **self.extra_vars,
                "jobs_config": [
                    {"name": "disk-report", "kind": "command", "args": {"argv": ["df", "-h"]}, "schedule": "H */6 * * *"},
                    {"name": "heartbeat", "kind": "noop", "schedule": "*/15 * * * *"},
                ],
                "jobs_group_config": [{"name": "uptime", "kind": "command", "args": {"argv": ["uptime"]}, "schedule": "H * * * *"}],
                "monitoring_log_config": [{"name": "syslog", "path": "/var/log/syslog",
                                           "rules": [{"name": "errors", "pattern": "error", "warning": 50, "critical": 200}]}],
                "logrotate_config": [{"name": "app", "paths": ["/var/log/app/*.log"]}],
                "cleanup_config": [{"name": "tmp", "paths": ["/var/tmp"], "age": "14d"},
                                   {"name": "app-cache", "paths": ["/var/cache/app"], "age": "7d"}],
            },
            "children": {group: {"hosts": everything} for group in ("caretaker_monitoring", "caretaker_hygiene", "caretaker_patching")},
        }}
        path = self.workdir / f"inventory-{self.size}{self.tag}-{connection}.json"
        path.write_text(json.dumps(inventory))
        return path


def floor_playbook(workdir: pathlib.Path, name: str) -> pathlib.Path:
    reaching, skipped = FLOORS[name]
    tasks = [{"name": f"Reach the host {index}", "ansible.builtin.ping": {}} for index in range(reaching)]
    tasks += [{"name": f"Skip {index}", "ansible.builtin.ping": {}, "when": False} for index in range(skipped)]
    path = workdir / f"floor-{reaching}-{skipped}.yml"
    path.write_text(json.dumps([{"name": "The floor", "hosts": "all", "gather_subset": ["min"], "tasks": tasks}]))
    return path


def ansible_env(workdir: pathlib.Path, pipelining: bool) -> dict:
    collections = ROOT / ".build" / "collections"
    link = collections / "ansible_collections" / "caretaker" / "ops"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(ROOT, link)
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": f"{collections}:{pathlib.Path(sys.executable).parent.parent}/lib/python3.11/site-packages",
        "ANSIBLE_FORKS": str(FORKS),
        "ANSIBLE_PIPELINING": "true" if pipelining else "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(workdir / "cp"),
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",  # the slowest tasks, at the end of each log
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
    }


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as handle:
                value = next((line.split()[1] for line in handle if line.startswith("VmRSS:")), "0")
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
        rss[int(entry)] = int(value)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def converge(inventory: pathlib.Path, workdir: pathlib.Path, label: str, pipelining: bool = True,
             playbook: pathlib.Path = SITE) -> dict:
    """One ansible-playbook run (site.yml unless told): wall seconds, peak tree RSS, the recap per host."""
    log = workdir / f"{label}.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                                 str(playbook)], env=ansible_env(workdir, pipelining),
                                stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
        peak, done = 0, threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_kib(proc.pid))
                done.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of ansible-playbook and every process it waited for (forks, ssh): what the controller
    # itself pays, apart from the hosts' work, which here shares the same cores.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load = os.getloadavg()[0]
    text = log.read_text()
    recap = {host: {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
             for host, ok, changed, unreachable, failed in RECAP.findall(text)}
    if code != 0:
        print(text[-6000:])
        raise SystemExit(f"{label}: ansible-playbook exited {code} (log {log})")
    print(f"  {label}: {wall:7.1f} s, controller CPU {cpu:6.1f} s, peak controller memory {peak / 1024:6.0f} MiB, "
          f"changed on {sum(1 for row in recap.values() if row['changed'])}/{len(recap)} hosts, load average {load:.1f}", flush=True)
    return {"seconds": wall, "controller_cpu_seconds": cpu, "peak_rss_mib": peak / 1024, "recap": recap, "log": str(log), "load_average_1m": load}


def main() -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(remove_containers)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="caretaker-fleet-"))
    (workdir / "cp").mkdir()
    (workdir / "tmp").mkdir()
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    try:
        images = [ssh_image(base) for base in fresh_images()]
        preinstalled_images = [ssh_image(base) for base in PREINSTALLED_IMAGES]
        results, goals = {}, []
        side_by_side = wheelhouse = preinstalled = None
        for size in SIZES:
            print(f"\n{size} hosts ({', '.join(re.search(r'debian1[0-9]', image).group(0) for image in images)} alternating), forks {FORKS}",
                  flush=True)
            fleet = Fleet(size, images, workdir, key)
            first = converge(fleet.ssh_inventory, workdir, f"{size}-first")
            second = converge(fleet.ssh_inventory, workdir, f"{size}-second")
            changed = sorted(host for host, row in second["recap"].items() if row["changed"])
            goals.append({"goal": f"{size} hosts: second converge changed=0 on every host", "met": not changed and len(second["recap"]) == size,
                          "detail": changed})
            goals.append({"goal": f"{size} hosts: no-change run < 1/4 of the first converge",
                          "met": second["seconds"] < first["seconds"] / 4,
                          "detail": f"{second['seconds']:.1f} s vs {first['seconds']:.1f} s"})
            floors = {name: converge(fleet.ssh_inventory, workdir, f"{size}-floor-{name.replace(' ', '-')}",
                                     playbook=floor_playbook(workdir, name)) for name in FLOORS}
            results[size] = {"first": first, "second": second, "floors": floors}
            if side_by_side is None and COMPARE:
                side_by_side = compare_settings(fleet, workdir)
                remove_containers()
                wheelhouse = compare_wheelhouse(size, first, images, workdir, key)
                remove_containers()
                preinstalled = compare_preinstalled(size, preinstalled_images, workdir, key)
            remove_containers()

        report = {"name": "fleet", "sizes": results, "side_by_side": side_by_side, "goals": goals,
                  "settings": {"forks": FORKS, "pipelining": True, "strategy": "linear",
                               "fact_caching": "memory (facts gathered once, subset min, in the first play)",
                               "ssh": "ControlMaster=auto, ControlPersist=120s"},
                  "wheelhouse": wheelhouse,
                  "preinstalled": preinstalled,
                  "environment": environment()}
        base = min(SIZES)
        for size in SIZES:
            if size != base:
                ratios = report.setdefault("ratios", {})
                floors = {name: results[size]["floors"][name]["seconds"] / results[base]["floors"][name]["seconds"] for name in FLOORS}
                for run in ("first", "second"):
                    ratio = ratios[f"{size}/{base} {run}"] = results[size][run]["seconds"] / results[base][run]["seconds"]
                    if size == 20 and base == 5:
                        goals.append({"goal": f"20 hosts <= 2.5x the time of 5 ({run} converge)", "met": ratio <= 2.5,
                                      "detail": f"{ratio:.2f}x (plays doing nothing on the same hosts: "
                                                + ", ".join(f"{name} {value:.2f}x" for name, value in floors.items()) + ")"})
                ratios.update({f"{size}/{base} floor, {name}": value for name, value in floors.items()})
        print_report(report)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "fleet.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        return 0 if all(goal["met"] for goal in goals) else 1
    finally:
        remove_containers()


def compare_settings(fleet: Fleet, workdir: pathlib.Path) -> dict:
    """No-change runs on the same hosts, interleaved: pipelining on/off, SSH/podman connection."""
    print("  side by side, no-change runs interleaved:", flush=True)
    variants = {
        "ssh, pipelining on": (fleet.ssh_inventory, True),
        "ssh, pipelining off": (fleet.ssh_inventory, False),
        "podman connection, pipelining on": (fleet.podman_inventory, True),
    }
    seconds = {label: [] for label in variants}
    memory = dict.fromkeys(variants, 0.0)
    for repeat in range(SIDE_BY_SIDE_REPEAT):
        for label, (inventory, pipelining) in variants.items():
            run = converge(inventory, workdir, f"{fleet.size}-{label.replace(' ', '').replace(',', '-')}-{repeat}", pipelining)
            seconds[label].append(run["seconds"])
            memory[label] = max(memory[label], run["peak_rss_mib"])
    return {label: {"seconds": min(values), "runs": values, "peak_rss_mib": memory[label]} for label, values in seconds.items()}


def compare_wheelhouse(size: int, index_first: dict, images: list, workdir: pathlib.Path, key: pathlib.Path) -> dict:
    """A first converge of a fresh fleet of the same size with runtime_pip_source: wheelhouse
    (a cold wheelhouse: the controller downloads once, then every host installs offline),
    beside the first converge from the public index above."""
    wheels = workdir / "wheelhouse"
    fleet = Fleet(size, images, workdir, key, tag="w",
                  extra_vars={"runtime_pip_source": "wheelhouse", "runtime_wheelhouse_dir": str(wheels)})
    run = converge(fleet.ssh_inventory, workdir, f"{size}-first-wheelhouse")
    downloaded = sum(path.stat().st_size for path in wheels.rglob("*.whl"))
    return {"hosts": size, "index_first_seconds": index_first["seconds"], "wheelhouse_first_seconds": run["seconds"],
            "ratio": run["seconds"] / index_first["seconds"], "wheelhouse_mib": downloaded / 2**20,
            "peak_rss_mib": run["peak_rss_mib"]}


def compare_preinstalled(size: int, images: list, workdir: pathlib.Path, key: pathlib.Path) -> dict:
    """The first and the no-change run on hosts of the test image, whose Debian packages are in
    place already: the first converge without apt, beside the no-change run."""
    fleet = Fleet(size, images, workdir, key, tag="p")
    first = converge(fleet.ssh_inventory, workdir, f"{size}-first-preinstalled")
    second = converge(fleet.ssh_inventory, workdir, f"{size}-second-preinstalled")
    return {"hosts": size, "first_seconds": first["seconds"], "second_seconds": second["seconds"],
            "ratio": second["seconds"] / first["seconds"],
            "changed_hosts": sorted(host for host, row in second["recap"].items() if row["changed"])}


def print_report(report: dict) -> None:
    print(f"\nfleet: playbooks/site.yml over SSH on fresh Debian hosts; forks {report['settings']['forks']}, pipelining on, strategy linear,"
          f" facts gathered once (subset min), {report['environment']['cpu_count']} cores shared with other work")
    print(f"  {'hosts':>5} {'first s':>8} {'s/host':>7} {'CPU s/host':>10} {'MiB':>6}   {'no-change s':>11} {'s/host':>7}"
          f" {'CPU s/host':>10} {'MiB':>6} {'no-change/first':>15}")
    for size, runs in report["sizes"].items():
        first, second = runs["first"], runs["second"]
        print(f"  {size:>5} {first['seconds']:8.1f} {first['seconds'] / size:7.1f} {first['controller_cpu_seconds'] / size:10.1f}"
              f" {first['peak_rss_mib']:6.0f}   {second['seconds']:11.1f} {second['seconds'] / size:7.1f}"
              f" {second['controller_cpu_seconds'] / size:10.1f} {second['peak_rss_mib']:6.0f}"
              f" {second['seconds'] / first['seconds']:15.2f}")
    for name, ratio in report.get("ratios", {}).items():
        print(f"  ratio {name}: {ratio:.2f}x")
    print("  floors, plays that do nothing on the same hosts: facts only; the no-change run's shape"
          f" (facts, {FLOORS['no-change shape'][0]} pings, {FLOORS['no-change shape'][1]} skipped tasks):")
    for size, runs in report["sizes"].items():
        facts, shape, second = runs["floors"]["facts only"], runs["floors"]["no-change shape"], runs["second"]
        print(f"    {size:>3} hosts: facts only {facts['seconds']:5.1f} s, no-change shape {shape['seconds']:5.1f} s"
              f" (CPU {shape['controller_cpu_seconds']:5.1f} s), site.yml no-change {second['seconds']:5.1f} s,"
              f" {second['seconds'] / shape['seconds']:.2f}x its shape")
    if report["side_by_side"]:
        print(f"  side by side on {min(report['sizes'])} hosts, no-change run (best of {SIDE_BY_SIDE_REPEAT}):")
        base = report["side_by_side"]["ssh, pipelining on"]["seconds"]
        for label, row in report["side_by_side"].items():
            print(f"    {label:34} {row['seconds']:7.1f} s  {row['seconds'] / base:5.2f}x  peak {row['peak_rss_mib']:5.0f} MiB")
    wheel = report["wheelhouse"]
    if wheel:
        print(f"  first converge on {wheel['hosts']} fresh hosts: public index {wheel['index_first_seconds']:.1f} s,"
              f" wheelhouse (cold, {wheel['wheelhouse_mib']:.0f} MiB downloaded once) {wheel['wheelhouse_first_seconds']:.1f} s,"
              f" {wheel['ratio']:.2f}x")
    pre = report.get("preinstalled")
    if pre:
        print(f"  hosts with the roles' packages preinstalled (the test image), {pre['hosts']} hosts: first {pre['first_seconds']:.1f} s,"
              f" no-change {pre['second_seconds']:.1f} s, no-change/first {pre['ratio']:.2f},"
              f" changed on {len(pre['changed_hosts'])} hosts in the no-change run")
    for goal in report["goals"]:
        print(f"  goal {goal['goal']}: {'met' if goal['met'] else 'MISSED'} {goal.get('detail') or ''}")


if __name__ == "__main__":
    sys.exit(main())
