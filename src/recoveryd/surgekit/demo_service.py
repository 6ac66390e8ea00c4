"""A demo health-code service for the surge drill and the bench (not used by the daemon).

Routes, each doing some CPU work per request like a real back end:
- essential: `/verify` (code verification at checkpoints), `/pay/verify`
  (payment verification);
- non-essential: `/news`, `/history`, `/appointments` (heavier);
- `/healthz` (cheap); `/stats/rps`: requests per second served over the last
  `RATE_WINDOW` seconds, as a bare number (a service-side signal for the governor's
  command probe, e.g. `curl -s http://127.0.0.1:PORT/stats/rps`).

Run: `python -m recoveryd.surgekit.demo_service --port 0 --port-file PATH`
(binds 127.0.0.1 only; writes the chosen port to PATH once listening).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ESSENTIAL = ("/verify", "/pay/verify")
NON_ESSENTIAL = ("/news", "/history", "/appointments")
RATE_WINDOW = 2.0
_WORK = {"/verify": 1, "/pay/verify": 1, "/news": 3, "/history": 3, "/appointments": 4}


def work(units: int, iterations: int) -> str:
    """CPU work standing in for a back end's: `units` rounds of PBKDF2."""
    digest = b""
    for _ in range(units):
        digest = hashlib.pbkdf2_hmac("sha256", b"health-code", digest or b"salt", iterations)
    return digest.hex()[:16]


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, {"ok": True})
            return
        if path == "/stats/rps":
            self._send_text(200, f"{self.server.rate():.1f}\n")
            return
        units = _WORK.get(path)
        if units is None:
            self._send(404, {"error": "not found"})
            return
        self.server.count()
        token = work(units, self.server.iterations)
        self._send(200, {"route": path, "essential": path in ESSENTIAL, "token": token})

    def _send(self, status: int, body: dict[str, object]) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json")

    def _send_text(self, status: int, text: str) -> None:
        self._send_bytes(status, text.encode(), "text/plain")

    def _send_bytes(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(self, port: int = 0, *, iterations: int = 2000) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.iterations = iterations
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def count(self) -> None:
        with self._lock:
            self._times.append(time.monotonic())

    def rate(self) -> float:
        """Requests per second over the last RATE_WINDOW seconds."""
        horizon = time.monotonic() - RATE_WINDOW
        with self._lock:
            while self._times and self._times[0] < horizon:
                self._times.popleft()
            return len(self._times) / RATE_WINDOW

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (timeout, reset) is not an error of the service."""
        return

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--iterations", type=int, default=2000, help="PBKDF2 rounds per work unit")
    args = parser.parse_args(argv)
    server = DemoServer(args.port, iterations=args.iterations)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
