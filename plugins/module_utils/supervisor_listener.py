"""A supervisord [eventlistener:] that alerts through caretaker's notifier.

Run by supervisord as `python -m caretaker.supervisor_listener` with
events=PROCESS_STATE_FATAL,PROCESS_STATE_EXITED,PROCESS_STATE_RUNNING,TICK_60.
- FATAL (supervisord gave up starting a program): a critical alert at once.
- EXITED with expected:0, `--exits` times within `--window` seconds: a warning that the
  program is crash-looping even though supervisord keeps restarting it.
- RUNNING, or a tick with the window clear again: the matching resolve.
stdout is the protocol channel to supervisord, so diagnostics go to stderr (its log).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time

from .alerting.path import observe_and_send
from .foundation.config import Settings
from .foundation.errors import CaretakerError
from .foundation.ledger import Ledger
from .foundation.timestamps import now_iso


def parse_tokens(text):
    """'processname:cat groupname:cat from_state:BACKOFF' -> dict."""
    return dict(token.split(":", 1) for token in text.split() if ":" in token)


class Listener:
    def __init__(self, settings, exits=3, window=300.0, routes=None, runbook=None, clock=time.monotonic):
        self.settings = settings
        self.exits = exits
        self.window = window
        self.routes = routes  # None: the host's default routes
        self.runbook = runbook
        self.clock = clock
        self.exit_times = collections.defaultdict(collections.deque)
        self.flapping = set()

    def handle(self, event, payload):
        name = payload.get("processname", "?")
        group = payload.get("groupname", name)
        program = name if group == name else f"{group}:{name}"
        if event == "PROCESS_STATE_FATAL":
            self._observe(program, "fatal", "critical", f"supervisor program {program} entered FATAL: it could not be started",
                          {"from_state": payload.get("from_state")})
        elif event == "PROCESS_STATE_EXITED" and payload.get("expected") == "0":
            times = self._recent(program)
            times.append(self.clock())
            _log("unexpected_exit", program=program, pid=payload.get("pid"), recent_exits=len(times))
            if len(times) >= self.exits:
                self.flapping.add(program)
                self._observe(program, "exits", "warning",
                              f"supervisor program {program} exited unexpectedly {len(times)} times in {int(self.window)} s",
                              {"exits": len(times), "window_seconds": self.window, "pid": payload.get("pid")})
        elif event == "PROCESS_STATE_RUNNING":
            self._observe(program, "fatal", "ok", f"supervisor program {program} is running again")
            self._maybe_resolve_exits(program)
        elif event.startswith("TICK"):
            for flapping in list(self.flapping):
                self._maybe_resolve_exits(flapping)

    def _recent(self, program):
        times = self.exit_times[program]
        horizon = self.clock() - self.window
        while times and times[0] < horizon:
            times.popleft()
        return times

    def _maybe_resolve_exits(self, program):
        if program in self.flapping and len(self._recent(program)) < self.exits:
            self.flapping.discard(program)
            self._observe(program, "exits", "ok", f"supervisor program {program} stopped crash-looping")

    def _observe(self, program, what, severity, summary, details=None):
        ledger = Ledger(self.settings.database)
        try:
            observe_and_send(
                ledger, self.settings, f"supervisor:{program}:{what}", severity, summary,
                check=f"supervisor:{program}", routes=self.routes, log=_log, after=1,
                details={"program": program, **(details or {})}, runbook=self.runbook,
            )
        finally:
            ledger.close()


def _log(event, **fields):
    sys.stderr.write(json.dumps({"ts": now_iso(milliseconds=True), "event": event, **fields}, default=str) + "\n")
    sys.stderr.flush()


def serve(listener, stdin, stdout):
    """The eventlistener protocol: READY, read one header line and its payload, RESULT."""
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return
        headers = parse_tokens(line.decode())
        payload = stdin.read(int(headers.get("len", 0))).decode()
        try:
            listener.handle(headers.get("eventname", ""), parse_tokens(payload))
        except (CaretakerError, OSError) as exc:
            # an alert that cannot go out must not make supervisord resend the event forever
            _log("listener_error", error=str(exc), eventname=headers.get("eventname"))
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="caretaker-supervisor-listener", description=__doc__.splitlines()[0])
    parser.add_argument("--exits", type=int, default=3, help="unexpected exits within --window that raise an alert")
    parser.add_argument("--window", type=float, default=300.0, help="seconds over which exits are counted")
    parser.add_argument("--route", action="append", dest="routes", help="alert route (repeatable; default: default_routes)")
    parser.add_argument("--runbook", help="runbook URL sent with the alerts")
    args = parser.parse_args(argv)
    listener = Listener(Settings.load(), exits=args.exits, window=args.window, routes=args.routes, runbook=args.runbook)
    serve(listener, sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
