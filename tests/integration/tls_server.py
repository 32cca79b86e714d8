"""A TLS server that serves CERT/KEY and loads them again on SIGHUP, as nginx does on reload.

usage: tls_server.py PORT CERT KEY PIDFILE RELOADS_FILE
"""

import http.server
import os
import signal
import ssl
import sys

port, cert, key, pidfile, reloads = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]


def load():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class Server(http.server.HTTPServer):
    context = load()

    def get_request(self):
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


def reload(_signum, _frame):
    Server.context = load()
    with open(reloads, "a") as handle:
        handle.write("reloaded\n")


server = Server(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
signal.signal(signal.SIGHUP, reload)
with open(pidfile, "w") as handle:
    handle.write(str(os.getpid()))
server.serve_forever()
