"""A loopback HTTP fault proxy for the object-store fault campaign.

`FaultProxy(upstream_port, plan)` listens on 127.0.0.1 and forwards each HTTP/1.1
request of a client (boto3, keep-alive) to the real store (Ceph RGW or Swift) on a
fresh upstream connection. Before forwarding, it asks `plan.fault(n)` what to do
with the n-th request it has seen (numbered in arrival order, from 0):

- `None`: forward, relay the whole answer;
- `"reset"`: drop the request and reset the connection (RST);
- `"reset_after"`: forward (the store carries the request out) and reset the
  connection instead of relaying the answer — the client cannot know it worked;
- `"timeout"`: hold the request unanswered for `plan.stall` seconds (longer than
  the client's read timeout), then close;
- `"503"` / `"500"`: answer `503 SlowDown` / `500 InternalError` as S3 does;
- `"truncate"`: forward, relay the answer's head and half its body, then close
  (the declared Content-Length is not met);
- `"latency"`: wait `plan.delay` seconds, then forward normally.

Requests are read whole (head and Content-Length body; `Expect: 100-continue` is
answered by the proxy), so the request line tells the plan what is being done.
Every injected fault is appended to `proxy.injected` as (n, method, path, kind).
Only loopback addresses are used; the proxy stops with `close()`.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

FAULTS = ("reset", "reset_after", "timeout", "503", "500", "truncate", "latency")
_LOOPBACK = "127.0.0.1"
_ERRORS = {
    "503": (b"503 Slow Down", b"SlowDown", b"Please reduce your request rate."),
    "500": (b"500 Internal Server Error", b"InternalError", b"We encountered an internal error."),
}


@dataclass
class FaultPlan:
    """Which requests fail, and how: seeded, so a run is reproduced by its seed.

    Each request is faulted with probability `rate`, with a kind drawn from `kinds`;
    `only` limits faults to requests whose method is in it (e.g. GET for restores).
    """

    seed: int
    rate: float = 0.25
    kinds: Sequence[str] = FAULTS
    only: frozenset[str] = frozenset()
    stall: float = 3.0
    delay: float = 0.05
    enabled: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fault(self, n: int, method: str, path: str) -> str | None:
        """The fault for the n-th request (`method` `path`), or None to forward it."""
        if not self.enabled or (self.only and method not in self.only):
            return None
        rng = random.Random(self.seed * 1_000_003 + n)
        if rng.random() >= self.rate:
            return None
        return rng.choice(list(self.kinds))


class FaultProxy:
    """The proxy (see the module docstring). Thread per client connection."""

    def __init__(self, upstream_port: int, plan: FaultPlan) -> None:
        self.upstream = (_LOOPBACK, upstream_port)
        self.plan = plan
        self.injected: list[tuple[int, str, str, str]] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server((_LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://{_LOOPBACK}:{self.port}"

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while not self._closed.is_set():
                request = _read_request(reader, client)
                if request is None:
                    return
                if not self._handle(client, request):
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                reader.close()
                client.close()

    def _number(self, method: str, path: str) -> tuple[int, str | None]:
        with self._lock:
            n = self.requests
            self.requests += 1
        kind = self.plan.fault(n, method, path)
        if kind is not None:
            with self._lock:
                self.injected.append((n, method, path, kind))
        return n, kind

    def _handle(self, client: socket.socket, request: _Request) -> bool:
        """Serve one request; False when the client connection must end."""
        _, kind = self._number(request.method, request.path)
        if kind == "reset":
            _reset(client)
            return False
        if kind == "timeout":
            self._closed.wait(self.plan.stall)
            return False
        if kind in _ERRORS:
            client.sendall(_error_answer(kind, request.method))
            return True
        if kind == "latency":
            time.sleep(self.plan.delay)
        answer = self._forward(request)
        if kind == "reset_after":
            _reset(client)
            return False
        if kind == "truncate" and answer.body_length > 1:
            client.sendall(answer.head + answer.body[: answer.body_length // 2])
            return False
        client.sendall(answer.head + answer.body)
        return not answer.close

    def _forward(self, request: _Request) -> _Answer:
        with socket.create_connection(self.upstream, timeout=120) as up:
            up.sendall(request.head + request.body)
            data = bytearray()
            while True:
                block = up.recv(1 << 16)
                if not block:
                    break
                data += block
        head_end = data.find(b"\r\n\r\n") + 4
        head, body = bytes(data[:head_end]), bytes(data[head_end:])
        fields = _headers(head)
        return _Answer(head, body, len(body), fields.get("connection", "").lower() == "close")


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    head: bytes
    body: bytes


@dataclass(frozen=True)
class _Answer:
    head: bytes
    body: bytes
    body_length: int
    close: bool


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return out


def _read_request(reader: object, client: socket.socket) -> _Request | None:
    """One whole request from the client, rewritten to close the upstream connection."""
    lines = []
    while True:
        line = reader.readline(65536)  # type: ignore[attr-defined]
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.rstrip(b"\r\n"))
    method, path = lines[0].decode("latin-1").split(" ")[:2]
    kept = [lines[0]]
    length, expect = 0, False
    for line in lines[1:]:
        name = line.partition(b":")[0].strip().lower()
        if name == b"content-length":
            length = int(line.partition(b":")[2].strip())
        if name == b"expect":
            expect = True
            continue
        if name == b"connection":
            continue
        kept.append(line)
    kept.append(b"Connection: close")
    if expect:
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = reader.read(length) if length else b""  # type: ignore[attr-defined]
    return _Request(method, path, b"\r\n".join(kept) + b"\r\n\r\n", body)


def _error_answer(kind: str, method: str) -> bytes:
    status, code, message = _ERRORS[kind]
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
        + code
        + b"</Code><Message>"
        + message
        + b"</Message></Error>"
    )
    payload = b"" if method == "HEAD" else body
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/xml\r\nContent-Length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed middlebox or store does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class TcpCutter:
    """A plain loopback TCP relay that drops its connections after `cut_after` bytes have
    gone from the server to the client (RST when `reset`, else FIN), as a network or a
    firewall dropping an SSH session mid-stream does. `cut_after=None` relays everything."""

    def __init__(self, upstream_port: int, cut_after: int | None, *, reset: bool = True) -> None:
        self.upstream = (_LOOPBACK, upstream_port)
        self.cut_after = cut_after
        self.reset = reset
        self.cuts = 0
        self._listener = socket.create_server((_LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            down = _Budget(self.cut_after)
            threading.Thread(target=self._pump, args=(client, up, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, down), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, budget: _Budget | None) -> None:
        try:
            while True:
                block = src.recv(1 << 16)
                if not block:
                    break
                if budget is not None and not budget.take(len(block)):
                    with self._lock:
                        self.cuts += 1
                    break
                dst.sendall(block)
        except OSError:
            pass
        for sock in (src, dst):
            if self.reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


class _Budget:
    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, n: int) -> bool:
        if self.left is None:
            return True
        self.left -= n
        return self.left > 0
