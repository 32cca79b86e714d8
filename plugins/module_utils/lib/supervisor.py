"""Talk to supervisord over its XML-RPC interface (the unix socket supervisorctl uses).

supervisor_info reports every program's state for health checks; supervisor_listener.py
uses the same state names to decide when to alert.
"""

from __future__ import annotations

import base64
import http.client
import socket
import xmlrpc.client

from ..foundation.errors import CaretakerError, ConfigError, TransientError
from ..foundation.tasks import Task

DEFAULT_SERVER = "unix:///var/run/supervisor.sock"
# States in which a program that should run is not doing its work.
BAD_STATES = ("FATAL", "BACKOFF", "EXITED", "UNKNOWN")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path, timeout, headers):
        super().__init__()
        self.socket_path = path
        self.timeout = timeout
        self._extra_headers = headers

    def make_connection(self, host):
        return _UnixConnection(self.socket_path, self.timeout)


def connect(server_url=DEFAULT_SERVER, username=None, password=None, timeout=10.0):
    """An XML-RPC proxy for supervisord at a unix:// or http:// URL."""
    headers = []
    if username:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        headers.append(("Authorization", f"Basic {token}"))
    if server_url.startswith("unix://"):
        transport = _UnixTransport(server_url[len("unix://") :], timeout, headers)
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport, allow_none=True)
    if server_url.startswith(("http://", "https://")):
        transport = xmlrpc.client.Transport()
        transport._extra_headers = headers
        return xmlrpc.client.ServerProxy(server_url.rstrip("/") + "/RPC2", transport=transport, allow_none=True)
    raise ConfigError(f"{server_url!r} is not a unix:// or http:// URL", field="server_url")


def process_info(server):
    """getAllProcessInfo, reduced to what a health check needs."""
    programs = []
    for info in server.supervisor.getAllProcessInfo():
        running = info["statename"] == "RUNNING"
        programs.append({
            "name": info["name"] if info["group"] == info["name"] else f"{info['group']}:{info['name']}",
            "group": info["group"],
            "state": info["statename"],
            "pid": info["pid"] or None,
            "uptime": info["now"] - info["start"] if running and info["start"] else 0,
            "exitstatus": info["exitstatus"],
            "spawnerr": info["spawnerr"],
            "description": info["description"],
        })
    return programs


INFO_SPEC = {
    "server_url": {"type": "str", "default": DEFAULT_SERVER},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "names": {"type": "list", "elements": "str", "default": []},
}


def _info(args, ctx):
    server = connect(args["server_url"], args["username"], args["password"])
    try:
        state = server.supervisor.getState()["statename"]
        programs = process_info(server)
    except (OSError, http.client.HTTPException) as exc:
        raise TransientError(f"cannot reach supervisord at {args['server_url']}: {exc}") from None
    except xmlrpc.client.ProtocolError as exc:
        raise CaretakerError(f"supervisord at {args['server_url']} refused the request: {exc.errcode} {exc.errmsg}") from None
    if args["names"]:
        wanted = set(args["names"])
        programs = [program for program in programs if program["name"] in wanted or program["group"] in wanted]
    return {
        "changed": False,
        "supervisord_state": state,
        "programs": programs,
        "not_running": sorted(program["name"] for program in programs if program["state"] in BAD_STATES),
    }


SUPERVISOR_INFO = Task(name="supervisor_info", argument_spec=INFO_SPEC, run=_info)
