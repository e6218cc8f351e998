#!/usr/bin/env python3
"""A /metrics stand-in for the recorder scripts (not for CI), on 127.0.0.1.

HTTP/1.1 keep-alive with Nagle off (Python's server with Nagle on adds ~40 ms per keep-alive
answer, see /work/shared/DESIGN.md), answering GET /metrics with one of a few prepared bodies
in turn and GET /version with a vLLM-like JSON.

  metrics_server.py --port-file F --body FILE       serve a real capture, as it is
  metrics_server.py --port-file F --series N        serve N gauge series, values changing

The port it listens on (chosen by the kernel) is written to the --port-file once it listens.
"""
import argparse
import http.server
import socket
import socketserver
import sys


def synthetic_bodies(series, variants=4):
    bodies = []
    for v in range(variants):
        lines = ["# HELP synthetic_series A high-cardinality gauge.",
                 "# TYPE synthetic_series gauge"]
        lines += ['synthetic_series{shard="%d",id="%d"} %d' % (i % 100, i, (i * 7 + v) % 1000)
                  for i in range(series)]
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--body")
    ap.add_argument("--series", type=int)
    args = ap.parse_args()
    if args.body:
        with open(args.body, "rb") as f:
            bodies = [f.read()]
    else:
        bodies = synthetic_bodies(args.series or 100_000)
    state = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            if self.path == "/metrics":
                body = bodies[state["n"] % len(bodies)]
                state["n"] += 1
                ctype = "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/version":
                body, ctype = b'{"version": "bench"}', "application/json"
            else:
                body, ctype = b"not found\n", "text/plain"
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(str(srv.server_address[1]))
    sys.stderr.write("metrics_server: %d bodies of %d bytes on port %d\n"
                     % (len(bodies), len(bodies[0]), srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
