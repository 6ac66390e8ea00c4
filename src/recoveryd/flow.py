"""Flow control of long work: pause at chunk boundaries, throttle bandwidth, report progress.

The backup pipeline calls a Gate at every chunk boundary; the load governor
supplies one that pauses and throttles by pressure level. With no
governor, `OPEN_GATE` lets everything through. Waits for bandwidth (and a store's
retry backoff) end at once when the run's cancel event is set. Pure: imports no adapter.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from recoveryd.errors import InterruptedOperation

INTERRUPTED = "interrupted; the snapshot was not committed"
POLL_SECONDS = 0.1
"""How often `AnyEvent.wait` looks at the events it combines."""


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
            raise InterruptedOperation(INTERRUPTED)

    def throttle(self, nbytes: int) -> None:
        return None

    def concurrency(self, configured: int) -> int:
        return configured


OPEN_GATE = OpenGate()


class AnyEvent(threading.Event):
    """Set when it is set itself or when any of `events` is (a shutdown, a lost claim).

    `wait` wakes at once when this event is set, and notices the others within
    POLL_SECONDS: a threading.Event cannot be waited on together with another."""

    def __init__(self, *events: threading.Event) -> None:
        super().__init__()
        self._events = events

    def is_set(self) -> bool:
        return super().is_set() or any(e.is_set() for e in self._events)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            super().wait(min(left, POLL_SECONDS))
        return True


COMMIT_GRACE = 20.0
"""How long `StopSignal.shielded()` hides a stop by default: a commit's few small writes
take well under a second; the daemon waits 30 s for a cancelled job."""


class StopSignal(threading.Event):
    """A run's stop as its stores see it: set when `stop` is, except inside `shielded()`.

    A backup's stores wait on it (bandwidth, retry backoff), so that a stop cuts those
    waits short; once the backup has passed its last checkpoint it commits inside
    `shielded()`, and its manifests are written (and retried) as if no stop had come,
    for up to `seconds`: a stop then does not leave a snapshot committed on some targets
    and reported as interrupted unless a store still fails to answer after that time.
    `stop` may combine the operator's stop with a lost fleet claim (`AnyEvent`): the
    fence is the last checkpoint, so a member that loses its claim during the commit
    still finishes it. The shield holds for every thread waiting on this signal."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self._stop = stop
        self._until: float | None = None

    def set(self) -> None:
        self._stop.set()

    def clear(self) -> None:
        self._stop.clear()

    def _shielded(self) -> bool:
        until = self._until
        return until is not None and time.monotonic() < until

    def is_set(self) -> bool:
        return not self._shielded() and self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._shielded():
                if not self._stop.wait(left):
                    return False
                if not self._shielded():
                    return True
            elif left == 0.0:
                return False
            else:  # shielded: the stop is not seen; look again when the shield may be over
                time.sleep(POLL_SECONDS if left is None else min(left, POLL_SECONDS))

    @contextlib.contextmanager
    def shielded(self, seconds: float = COMMIT_GRACE) -> Iterator[None]:
        before, self._until = self._until, time.monotonic() + seconds
        try:
            yield
        finally:
            self._until = before


def interruptible_wait(
    seconds: float, cancel: threading.Event | None, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Wait `seconds`: with `sleep` when nothing can stop the wait, else on `cancel`,
    raising InterruptedOperation as soon as it is set (nothing of the run is committed)."""
    if cancel is None:
        sleep(seconds)
    elif cancel.wait(seconds):
        raise InterruptedOperation(INTERRUPTED)


class TokenBucket:
    """A thread-safe rate limiter in bytes per second (None = unlimited).

    With `cancel` (the run's stop), a wait ends as soon as it is set, raising
    InterruptedOperation; the bytes stay accounted for."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cancel: threading.Event | None = None,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._cancel = cancel
        self._lock = threading.Lock()
        self._next_free = clock()

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            self._rate = rate

    def take(self, nbytes: int) -> None:
        """Account for `nbytes`; blocks until the bytes before them have had their time."""
        with self._lock:
            if not self._rate:
                return
            now = self._clock()
            start = max(now, self._next_free)
            self._next_free = start + nbytes / self._rate
            wait = start - now
        if wait > 0:
            interruptible_wait(wait, self._cancel, self._sleep)


@dataclass
class Progress:
    """Counters a progress bar or a log event reads; updated by the pipeline."""

    total: int | None = None
    read_bytes: int = 0
    stored_bytes: int = 0
    chunks: int = 0
    new_chunks: int = 0


ProgressCallback = Callable[[Progress], None]


def due_soon(
    rpo_seconds: float | None, last_snapshot: datetime | None, now: datetime, wait_seconds: float
) -> bool:
    """True when waiting `wait_seconds` more would break the RPO: the one "due soon" rule.

    The daemon waits its retry interval; the CLI, whose operator retries at an unknown
    time, a tenth of the RPO. No RPO: never due soon; no snapshot yet: always.
    """
    if rpo_seconds is None:
        return False
    if last_snapshot is None:
        return True
    age = max(0.0, (now - last_snapshot).total_seconds())
    return age + wait_seconds >= rpo_seconds


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
    """Decides whether work of a priority may start now; the load governor implements it.

    `admit` returns "run", "throttled" or "wait". `due_soon` is True when waiting
    longer would break the source's RPO: the governor then answers "throttled"
    (never "wait") and raises an `rpo_override` alert.
    """

    def admit(self, priority: str, *, job: str, due_soon: bool = False) -> str: ...

    def gate(self, priority: str, *, cancel: threading.Event | None = None) -> Gate:
        """The gate running work of this priority passes at chunk boundaries; `cancel`, the
        work's stop, ends its pauses and throttled waits."""
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

    def gate(self, priority: str, *, cancel: threading.Event | None = None) -> Gate:
        return self._gate  # it never waits: nothing for `cancel` to cut short

    def level(self) -> str:
        return "normal"
