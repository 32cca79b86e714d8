"""Sample WSGI app: / says hello, /health reads the database and names the release."""

import json
import os

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "release.json"), encoding="utf-8") as handle:
    RELEASE = json.load(handle)


def _health():
    if RELEASE["health_fails"]:
        return "500 Internal Server Error", {"release": RELEASE["name"], "ok": False, "error": "this release is broken on purpose"}
    with psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=3) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM items" if RELEASE["schema"] < 2 else "SELECT count(note) FROM items")
        rows = cursor.fetchone()[0]
    return "200 OK", {"release": RELEASE["name"], "ok": True, "rows": rows}


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/health":
        try:
            status, body = _health()
        except Exception as exc:
            status, body = "503 Service Unavailable", {"release": RELEASE["name"], "ok": False, "error": str(exc)}
    else:
        status, body = "200 OK", {"release": RELEASE["name"], "hello": "world"}
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
