"""Requests through HAProxy in a loop until STOPFILE appears, bounded in count and time;
prints {"ok": N, "failed": N, "errors": [...]}. Usage: client.py URL STOPFILE."""

import json
import os
import sys
import time
import urllib.request

url, stop = sys.argv[1], sys.argv[2]
ok = failed = 0
errors = []
deadline = time.monotonic() + 300
while not os.path.exists(stop) and ok + failed < 20000 and time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        ok += 1
    except OSError as exc:
        failed += 1
        errors.append(str(exc))
    time.sleep(0.02)
print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:10]}))
