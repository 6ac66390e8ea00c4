"""The sd_notify protocol, by hand: datagrams to `$NOTIFY_SOCKET` (systemd Type=notify).

Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. Abstract
namespace sockets (`@name`) are supported. The watchdog thread sends
`WATCHDOG=1` every `WATCHDOG_USEC / 2` only while `alive()` says the
scheduler loop still turns: a stuck daemon stops pinging and systemd restarts it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping


class Notifier:
    """Sends state lines to systemd; thread-safe; never raises (best effort, like libsystemd)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if raw.startswith("@"):
            self.address = b"\0" + raw[1:].encode()
        elif raw.startswith("/"):
            self.address = raw
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_usec: int | None = int(usec) if usec.isdigit() and int(usec) > 0 else None
        if pid.isdigit() and int(pid) != os.getpid():
            self.watchdog_usec = None  # the watchdog is meant for another process
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def heartbeat_interval(self) -> float:
        """How often the scheduler loop beats: a quarter of the watchdog period, 0.2-5 s."""
        if self.watchdog_usec is None:
            return 5.0
        return max(0.2, min(5.0, self.watchdog_usec / 4_000_000))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send one datagram with the given `KEY=value` lines; False when it could not."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(payload, self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        lines = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            lines.append(f"STATUS={status}")
        return self.send(*lines)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str | None = None) -> bool:
        lines = ["STOPPING=1"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        return self.send(*lines)

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Watchdog:
    """Pings `WATCHDOG=1` every half period while `alive()` is true."""

    def __init__(self, notifier: Notifier, alive: Callable[[], bool]) -> None:
        self.notifier = notifier
        self.alive = alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0
        self.skipped = 0

    @property
    def interval(self) -> float | None:
        usec = self.notifier.watchdog_usec
        return None if usec is None else usec / 2_000_000

    def start(self) -> None:
        if self.interval is None or not self.notifier.enabled:
            return
        self._thread = threading.Thread(target=self._loop, name="sd-watchdog", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        interval = self.interval or 1.0
        while not self._stop.is_set():
            if self.alive():
                self.notifier.watchdog()
                self.pings += 1
            else:
                self.skipped += 1  # stuck: let systemd's watchdog fire
            self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
