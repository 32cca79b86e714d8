"""A web site whose health the test sets: it answers with the status code in a file."""

import http.server
import sys

STATUS_FILE = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(STATUS_FILE, encoding="ascii") as handle:
            status = int(handle.read().strip() or 200)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok\n" if status == 200 else b"broken\n")

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
