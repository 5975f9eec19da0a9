"""A fault-injecting HTTP proxy between the console and a real `mlflow server`, run as its own process.

    python tests/faultproxy.py --upstream http://127.0.0.1:5000 --port 5099

Every request is forwarded to the upstream unless a rule says otherwise. Rules and counters are set
and read over HTTP on the proxy itself (so a test can drive a proxy in another process):

    POST /__faults__/rules  {"match": "registered-models/alias", "fault": "delay", "seconds": 4,
                             "methods": ["POST"], "skip": 0, "times": 1}
    POST /__faults__/clear  drop every rule and counter
    GET  /__faults__/log    {"writes": [...], "held": n}: every write request seen, in order

Faults (applied to the first `times` matching requests after `skip` of them passed through; with
"after": "<path>", only once a write to that path was forwarded):
  delay  forward the request, hold the response `seconds`, then send it (past the client's timeout)
  drop   forward the request, then close the connection without a response
  error  forward the request, then answer 500 (the write was applied anyway)
  reset  do not forward; reset the connection (TCP RST)
  hold   hold the request `seconds` before forwarding it (a write that lands late), then answer

A "write" is any POST/PUT/PATCH/DELETE under /api/ or /ajax-api/; the log records for each whether it
was forwarded to MLflow, so a test counts the writes MLflow actually received.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.writes: list[dict] = []
        self.held = 0

    def clear(self) -> None:
        with self.lock:
            self.rules, self.writes, self.held = [], [], 0

    def add_rule(self, rule: dict) -> None:
        rule = {"methods": ["POST"], "skip": 0, "times": 1, "seconds": 0.0, **rule, "seen": 0, "applied": 0}
        with self.lock:
            self.rules.append(rule)

    def fault_for(self, method: str, path: str, body: dict | None = None) -> dict | None:
        with self.lock:
            for rule in self.rules:
                if method not in rule["methods"] or rule["match"] not in path:
                    continue
                # "body": {"alias": "champion"} hits only the writes of that alias, not another one the
                # same step writes (the rollback alias beside it).
                if any((body or {}).get(k) != v for k, v in (rule.get("body") or {}).items()):
                    continue
                if rule.get("after") and not any(
                        w["forwarded"] and rule["after"] in w["path"]
                        and all((w.get("body") or {}).get(k) == v for k, v in (rule.get("after_body") or {}).items())
                        for w in self.writes):
                    continue
                rule["seen"] += 1
                if rule["seen"] <= rule["skip"] or rule["applied"] >= rule["times"]:
                    continue
                rule["applied"] += 1
                return dict(rule)
        return None


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 0)

    def log_message(self, *args):  # quiet: the test reads the log endpoint instead
        pass

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for key, value in headers or [("Content-Type", "application/json")]:
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _control(self, body: bytes) -> None:
        if self.path == "/__faults__/rules" and self.command == "POST":
            STATE.add_rule(json.loads(body or b"{}"))
            self._send(200, b"{}")
        elif self.path == "/__faults__/clear" and self.command == "POST":
            STATE.clear()
            self._send(200, b"{}")
        elif self.path == "/__faults__/log":
            with STATE.lock:
                payload = {"writes": list(STATE.writes), "held": STATE.held}
            self._send(200, json.dumps(payload).encode())
        else:
            self._send(404, b"{}")

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Connection"] = "close"
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__faults__/"):
            self._control(body)
            return
        try:  # what was written (an alias name, a tag key), so rules and tests can tell two writes apart
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = None
        parsed = parsed if isinstance(parsed, dict) else None
        fault = STATE.fault_for(self.command, self.path, parsed)
        kind = fault["fault"] if fault else None
        is_write = self.command in WRITE_METHODS and self.path.startswith(("/api/", "/ajax-api/"))
        entry = {"method": self.command, "path": self.path, "fault": kind, "forwarded": False, "at": time.time()}
        if is_write:
            entry["body"] = parsed
            with STATE.lock:
                STATE.writes.append(entry)
        if kind == "reset":
            self._reset()
            return
        if kind == "hold":
            with STATE.lock:
                STATE.held += 1
            time.sleep(float(fault["seconds"]))
        status, headers, payload = self._forward(body)
        entry["forwarded"] = True
        entry["forwarded_at"] = time.time()
        if kind == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
            self.close_connection = True
            return
        if kind == "error":
            self._send(500, json.dumps({"error_code": "INTERNAL_ERROR", "message": "injected by faultproxy"}).encode())
            return
        if kind == "delay":
            with STATE.lock:
                STATE.held += 1
            time.sleep(float(fault["seconds"]))
        try:
            self._send(status, payload, headers)
        except OSError:  # the client gave up waiting: that is the point of a delay
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    parts = urlsplit(args.upstream)
    Handler.upstream = (parts.hostname, parts.port or 80)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
