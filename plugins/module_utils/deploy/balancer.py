"""deploy_balancer: take a server out of the load balancer and put it back.

HAProxy is built in, through its runtime API (the stats socket at admin level):
`set server BACKEND/SERVER state drain|ready|maint`, then for a drain, wait until the
server has no current session, so a restart cuts no request in flight. Any other balancer
is a hook: a command run with BALANCER_STATE, BALANCER_BACKEND and BALANCER_SERVER set.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import time

from ..foundation.errors import CaretakerError, ConfigError, TransientError
from ..foundation.tasks import Task

BALANCER_SPEC = {
    "type": {"type": "str", "default": "haproxy", "choices": ["haproxy", "command"]},
    "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
    "backend": {"type": "str", "required": True},
    "server": {"type": "str", "required": True},
    "state": {"type": "str", "required": True, "choices": ["drain", "ready", "maint"]},
    "drain_timeout": {"type": "float", "default": 30.0},
    "command": {"type": "list", "elements": "str", "default": []},
}

# HAProxy's status column once a state we set is in force (a server failing its checks shows
# DOWN whatever its admin state, so the command is sent every time: HAProxy takes it twice)
STATUS = {"drain": ("DRAIN", "NOLB"), "ready": ("UP", "no check"), "maint": ("MAINT",)}


def haproxy(path, command, timeout=5.0):
    """One runtime API command; returns HAProxy's answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(path)
            conn.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is HAProxy's stats socket at this path?", field="socket") from None
    except OSError as exc:
        raise TransientError(f"cannot talk to HAProxy at {path}: {exc.strerror or exc}") from None
    return b"".join(chunks).decode(errors="replace")


def server_stat(path, backend, server):
    """The `show stat` row of backend/server, or None."""
    text = haproxy(path, "show stat").lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    return None


def _haproxy(args, ctx):
    where = f"{args['backend']}/{args['server']}"
    row = server_stat(args["socket"], args["backend"], args["server"])
    if row is None:
        raise ConfigError(f"HAProxy at {args['socket']} has no server {where}", field="server")
    before = row["status"]
    changed = not before.startswith(STATUS[args["state"]])
    result = {"changed": changed, "before": before, "status": before, "sessions": int(row.get("scur") or 0)}
    if ctx.check_mode:
        return result
    answer = haproxy(args["socket"], f"set server {where} state {args['state']}").strip()
    if answer:
        raise CaretakerError(f"HAProxy refused `set server {where} state {args['state']}`: {answer}")
    deadline = time.monotonic() + args["drain_timeout"]
    while True:
        row = server_stat(args["socket"], args["backend"], args["server"])
        result.update(status=row["status"], sessions=int(row.get("scur") or 0))
        if args["state"] == "ready" or result["sessions"] == 0:
            break
        if time.monotonic() >= deadline:
            ctx.log("drain_timeout", server=where, sessions=result["sessions"])
            result["warnings"] = [f"{where} still had {result['sessions']} session(s) after {args['drain_timeout']:g} s"]
            break
        time.sleep(0.2)
    return result


def _command(args, ctx):
    if not args["command"]:
        raise ConfigError("is required with type=command", field="command")
    if ctx.check_mode:
        return {"changed": True}
    env = {**os.environ, "BALANCER_STATE": args["state"], "BALANCER_BACKEND": args["backend"], "BALANCER_SERVER": args["server"]}
    try:
        done = subprocess.run(args["command"], env=env, capture_output=True, text=True, timeout=args["drain_timeout"] + 30, check=False)
    except FileNotFoundError:
        raise ConfigError(f"{args['command'][0]!r} was not found", field="command") from None
    if done.returncode:
        raise CaretakerError(f"the balancer command exited with status {done.returncode}: {(done.stdout + done.stderr).strip()[-1000:]}")
    return {"changed": True, "output": done.stdout.strip()[-1000:]}


def _balancer(args, ctx):
    return (_haproxy if args["type"] == "haproxy" else _command)(args, ctx)


DEPLOY_BALANCER = Task(name="deploy_balancer", argument_spec=BALANCER_SPEC, run=_balancer)
