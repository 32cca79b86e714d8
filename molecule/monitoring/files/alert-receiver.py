"""Test double of an alerting service: appends every POSTed JSON body to a JSON-lines file."""

import http.server
import sys

RECEIVED = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(RECEIVED, "ab") as handle:
            handle.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", 9999), Handler).serve_forever()
