"""Flow control of long work: pause at chunk boundaries, throttle bandwidth, report progress.

The backup pipeline calls a Gate at every chunk boundary; the load governor
(SPEC §5) supplies one that pauses and throttles by pressure level. With no
governor, `OPEN_GATE` lets everything through. Pure: imports no adapter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from recoveryd.errors import InterruptedOperation


class Gate(Protocol):
    def checkpoint(self) -> None:
        """Called at each chunk boundary: blocks while paused; raises InterruptedOperation
        when the work must stop (shutdown)."""
        ...

    def throttle(self, nbytes: int) -> None:
        """Account for `nbytes` about to be uploaded; blocks to keep the current rate limit."""
        ...

    def concurrency(self, configured: int) -> int:
        """How many uploads may run in parallel now (at most `configured`)."""
        ...


class OpenGate:
    """No pausing, no limit; stops when `cancel` is set."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel or threading.Event()

    def checkpoint(self) -> None:
        if self.cancel.is_set():
            raise InterruptedOperation("interrupted; the snapshot was not committed")

    def throttle(self, nbytes: int) -> None:
        return None

    def concurrency(self, configured: int) -> int:
        return configured


OPEN_GATE = OpenGate()


class TokenBucket:
    """A thread-safe rate limiter in bytes per second (None = unlimited)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = clock()

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            self._rate = rate

    def take(self, nbytes: int) -> None:
        with self._lock:
            if not self._rate:
                return
            now = self._clock()
            start = max(now, self._next_free)
            self._next_free = start + nbytes / self._rate
            wait = start - now
        if wait > 0:
            self._sleep(wait)


@dataclass
class Progress:
    """Counters a progress bar or a log event reads; updated by the pipeline."""

    total: int | None = None
    read_bytes: int = 0
    stored_bytes: int = 0
    chunks: int = 0
    new_chunks: int = 0


ProgressCallback = Callable[[Progress], None]


class Tally:
    """Thread-safe progress counters of work done in several parts (targets, snapshots,
    parallel chunk reads), reported as one Progress after every change.

    `total` is fixed when known at the start; else each part adds what it plans with
    `plan(nbytes)`, and the total covers the parts started so far."""

    def __init__(self, callback: ProgressCallback | None, total: int | None = None) -> None:
        self._callback = callback
        self._state = Progress(total=total)
        self._lock = threading.Lock()

    def plan(self, nbytes: int) -> None:
        """Add `nbytes` to the total (a part that starts)."""
        with self._lock:
            self._state.total = (self._state.total or 0) + nbytes
        self._report()

    def add(self, read: int, *, stored: int = 0, new_chunk: bool = False) -> None:
        """One chunk done: `read` bytes of it, `stored` bytes written for it."""
        with self._lock:
            self._state.read_bytes += read
            self._state.stored_bytes += stored
            self._state.chunks += 1
            self._state.new_chunks += 1 if new_chunk else 0
        self._report()

    def _report(self) -> None:
        if self._callback is None:
            return
        with self._lock:
            snapshot = Progress(**vars(self._state))
        self._callback(snapshot)


NO_TALLY = Tally(None)


class Admission(Protocol):
    """Decides whether work of a priority may start now (SPEC §5); the load governor implements it.

    `admit` returns "run", "throttled" or "wait". `due_soon` is True when waiting
    longer would break the source's RPO: the governor then answers "throttled"
    (never "wait") and raises an `rpo_override` alert.
    """

    def admit(self, priority: str, *, job: str, due_soon: bool = False) -> str: ...

    def gate(self, priority: str) -> Gate:
        """The gate running work of this priority passes at chunk boundaries."""
        ...

    def level(self) -> str:
        """normal | elevated | critical"""
        ...


class AlwaysAdmit:
    """No governor configured: everything runs, ungated (but still cancellable)."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self._gate = OpenGate(cancel)

    def admit(self, priority: str, *, job: str, due_soon: bool = False) -> str:
        return "run"

    def gate(self, priority: str) -> Gate:
        return self._gate

    def level(self) -> str:
        return "normal"
