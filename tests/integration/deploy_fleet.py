"""A local fleet for deploy tests: app hosts (each a caretaker layout, an app root and a
Debian gunicorn), one HAProxy in front with its runtime API socket, and the sample app's
release tarballs. Every port is free-picked; every process is this fixture's own."""

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from caretaker.deploy import releases
from caretaker.foundation.config import Settings
from caretaker.foundation.tasks import Context
from fixtures.engine import CaretakerHost
from fixtures.ports import free_port

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "sample_app"
sys.path.insert(0, str(SAMPLE))
import build as sample_build  # noqa: E402


class AppHost:
    def __init__(self, root, name, database_url):
        self.name = name
        self.caretaker = CaretakerHost(root / name)
        self.settings = Settings.load(str(self.caretaker.etc))
        self.app_root = root / name / "app"
        self.port = free_port()
        self.database_url = database_url
        self.proc = None
        self.health_port = None  # a test points the gate elsewhere to make this host fail it
        self.log = root / f"{name}-gunicorn.log"

    def ctx(self, check_mode=False):
        return Context(settings=self.settings, check_mode=check_mode)

    def current(self):
        return releases.current_release(str(self.app_root))

    def start(self):
        env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["/usr/bin/gunicorn", "--chdir", str(self.app_root / "current"), "--bind", f"127.0.0.1:{self.port}",
                 "--workers", "2", "--graceful-timeout", "5", "app:application"],
                env=env, stdout=log, stderr=log, cwd="/",
            )

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # gunicorn finishes requests in flight on TERM
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def served_release(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=3) as response:
                return json.load(response)["release"]
        except (OSError, ValueError):
            return None


class HAProxy:
    def __init__(self, root, hosts):
        self.port = free_port()
        self.socket = str(root / "haproxy.sock")
        self.config = root / "haproxy.cfg"
        servers = "\n".join(f"    server {host.name} 127.0.0.1:{host.port} check inter 500 fall 2 rise 1" for host in hosts)
        self.config.write_text(f"""global
    stats socket {self.socket} mode 600 level admin
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch 1
    option http-server-close
frontend web
    bind 127.0.0.1:{self.port}
    default_backend app
backend app
    option httpchk GET /health
{servers}
""")
        self.proc = subprocess.Popen(["/usr/sbin/haproxy", "-db", "-f", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("haproxy did not start")
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Client(threading.Thread):
    """Requests through HAProxy in a loop, bounded in count and time; counts what failed."""

    def __init__(self, url, max_requests=5000, max_seconds=120):
        super().__init__(daemon=True)
        self.url, self.max_requests, self.max_seconds = url, max_requests, max_seconds
        self.ok = self.failed = 0
        self.errors = []
        self.stopping = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        while not self.stopping.is_set() and self.ok + self.failed < self.max_requests and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
                self.ok += 1
            except (OSError, urllib.error.HTTPError) as exc:
                self.failed += 1
                self.errors.append(str(exc))
            time.sleep(0.01)

    def finish(self):
        self.stopping.set()
        self.join(30)
        return self.ok, self.failed


def build_release(directory, release):
    out = pathlib.Path(directory) / f"sample-{release}.tar.gz"
    if not out.exists():
        sample_build.build(release, str(out))
    return out, releases.sha256_of(str(out))


def run(task, args, host, check_mode=False):
    from caretaker.foundation import argspec

    return task.run(argspec.validate(task.argument_spec, args), host.ctx(check_mode))


class Fleet:
    """App hosts behind one HAProxy, with the steps the deploy playbook takes, in its order."""

    def __init__(self, root, database_url, names=("app1", "app2")):
        self.root = pathlib.Path(root)
        self.database_url = database_url
        self.hosts = [AppHost(self.root, name, database_url) for name in names]
        self.haproxy = None

    def app_env(self):
        return {"DATABASE_URL": self.database_url}

    def release_args(self, host, release, deploy_id, state="current", **extra):
        artifact, digest = build_release(self.root, release)
        return {"app": "sample", "root": str(host.app_root), "state": state, "release": release, "deploy_id": deploy_id,
                "artifact": str(artifact), "sha256": digest, "strip_components": 1, "shared": ["config"], **extra}

    def migrate_args(self, host, release, deploy_id, conninfo, backup, **extra):
        chdir = str(host.app_root / "releases" / release)
        return {"app": "sample", "deploy_id": deploy_id, "release": release, "chdir": chdir,
                "pending_command": ["/usr/bin/python3", "bin/pending"], "version_command": ["/usr/bin/python3", "bin/version"],
                "migrate_command": ["/usr/bin/python3", "-m", "alembic", "upgrade", "head"],
                "environment": self.app_env(), "conninfo": conninfo, "backup": backup, "poll_interval": 0.2, **extra}

    def balancer(self, host, state):
        from caretaker.deploy.balancer import DEPLOY_BALANCER

        if self.haproxy:
            run(DEPLOY_BALANCER, {"socket": self.haproxy.socket, "backend": "app", "server": host.name, "state": state,
                                  "drain_timeout": 10}, host)

    def deploy(self, release, deploy_id, conninfo, backup, batches=(1, 1), health_budget=20.0, **release_extra):
        """lock, prepare everywhere, migrate once, then batches of drain/switch/restart/gate/enable;
        a failed gate reverts every switched host. Returns the outcome."""
        from caretaker.deploy.health import DEPLOY_HEALTH
        from caretaker.deploy.lock import DEPLOY_LOCK
        from caretaker.deploy.migrate import DEPLOY_MIGRATE
        from caretaker.deploy.releases import DEPLOY_RELEASE

        lock_host = self.hosts[0]
        run(DEPLOY_LOCK, {"app": "sample", "deploy_id": deploy_id, "holder": "tester", "controller": "pytest", "release": release}, lock_host)
        outcome = "ok"
        try:
            for host in self.hosts:
                run(DEPLOY_RELEASE, self.release_args(host, release, deploy_id, state="prepared", **release_extra), host)
            run(DEPLOY_MIGRATE, self.migrate_args(lock_host, release, deploy_id, conninfo, backup), lock_host)
            pending = list(self.hosts)
            for size in list(batches) + [len(self.hosts)] * len(self.hosts):
                batch, pending = pending[:size], pending[size:]
                for host in batch:
                    if host.current() == release:
                        continue
                    self.balancer(host, "drain")
                    try:
                        run(DEPLOY_RELEASE, self.release_args(host, release, deploy_id, **release_extra), host)
                        host.restart()
                        run(DEPLOY_HEALTH, {"url": f"http://127.0.0.1:{host.health_port or host.port}/health", "consecutive": 3, "interval": 0.3,
                                            "budget": health_budget, "expect_release": f'"release": "{release}"'}, host)
                    except Exception:
                        outcome = "rolled_back"
                        self.revert(deploy_id)
                        raise
                    finally:
                        self.balancer(host, "ready")
                    run(DEPLOY_RELEASE, self.release_args(host, release, deploy_id, state="confirmed"), host)
                if not pending:
                    break
        except Exception as exc:
            if outcome == "ok":
                outcome = "failed"
            run(DEPLOY_LOCK, {"app": "sample", "deploy_id": deploy_id, "state": "absent", "outcome": outcome,
                              "release": release, "reason": str(exc)[:500]}, lock_host)
            raise
        run(DEPLOY_LOCK, {"app": "sample", "deploy_id": deploy_id, "state": "absent", "release": release}, lock_host)
        return outcome

    def revert(self, deploy_id):
        from caretaker.deploy.releases import DEPLOY_RELEASE

        for host in self.hosts:
            args = {"app": "sample", "root": str(host.app_root), "state": "reverted", "deploy_id": deploy_id, "reason": "a gate failed"}
            result = run(DEPLOY_RELEASE, args, host)
            if result["changed"]:
                from caretaker.deploy.health import DEPLOY_HEALTH

                self.balancer(host, "drain")
                host.restart()
                run(DEPLOY_HEALTH, {"url": f"http://127.0.0.1:{host.port}/health", "consecutive": 2, "interval": 0.3,
                                    "budget": 20, "expect_release": f'"release": "{result["current"]}"'}, host)
                self.balancer(host, "ready")

    def stop(self):
        for host in self.hosts:
            host.stop()
        if self.haproxy:
            self.haproxy.stop()
