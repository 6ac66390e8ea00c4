"""When an abort (a stop condition, a signal) stops the running step.

A step that is not destructive stops at once. A destructive step, once
started, is left to end by itself (its own `timeout` still applies): killing
`rm -rf` or a promotion half-way leaves a system nobody can reason about. The
abort then takes effect as soon as the step has ended. A second signal
(`force`) or `interruptible: true` on the step stops it at once.

Every abort is journaled as an `abort` record: `requested` when it arrives
(`cause`, `detail`, the step it arrived `during`, whether it was `deferred`),
`forced` when a second signal stops a deferred step, and `effective` (with
`requested_at`) when it took effect, which may be later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from recoveryd.drill_records import AbortRecord

Cause = Literal["stop_condition", "signal"]


@dataclass
class _Running:
    name: str
    deferrable: bool
    cancel: threading.Event = field(default_factory=threading.Event)
    deferred: bool = False


class AbortControl:
    """The run's abort state; thread-safe (stop conditions and signals arrive on other threads).

    `requested` is set by the first abort: no further step starts. `step()` hands out the
    cancel event of one running step and decides when it is set.
    """

    def __init__(
        self, write: Callable[[AbortRecord], dict[str, Any]], clock: Callable[[], datetime]
    ) -> None:
        self._write = write
        self._clock = clock
        self._lock = threading.Lock()
        self.requested = threading.Event()
        self.cause: Cause | None = None
        self.detail: str | None = None
        self.at: datetime | None = None
        self.during: str | None = None  # the step the first abort arrived in
        self.deferred = False  # ... and whether it waited for that step to end
        self._running: _Running | None = None

    def request(self, cause: Cause, detail: str) -> None:
        """An abort arrives: journaled; the running step stops now, or when it ends."""
        with self._lock:
            now = self._clock()
            running = self._running
            deferred = running is not None and running.deferrable and not running.cancel.is_set()
            if self.cause is None:
                self.cause, self.detail, self.at = cause, detail, now
                self.during = running.name if running else None
                self.deferred = deferred
            self._write(
                AbortRecord(
                    time=now,
                    status="requested",
                    cause=cause,
                    detail=detail,
                    during=running.name if running else None,
                    deferred=deferred,
                )
            )
            first = not self.requested.is_set()
            self.requested.set()
            if running is not None and deferred:
                running.deferred = True
            elif first or (running is not None and not running.cancel.is_set()):
                self._effective(running, now)

    def force(self) -> None:
        """A second signal: a destructive step that is running stops at once too."""
        if not self.requested.is_set():
            self.request("signal", "interrupted by a signal")
        with self._lock:
            running = self._running
            if running is None or running.cancel.is_set():
                return
            now = self._clock()
            self._write(AbortRecord(time=now, status="forced", during=running.name))
            running.deferred = False
            self._effective(running, now)

    def _effective(self, running: _Running | None, now: datetime, *, stop: bool = True) -> None:
        if running is not None and stop:
            running.cancel.set()
        self._write(
            AbortRecord(
                time=now,
                status="effective",
                cause=self.cause,
                requested_at=self.at or now,
                during=running.name if running else None,
            )
        )

    def begin(self, name: str, *, deferrable: bool) -> threading.Event | None:
        """The cancel event of the step about to start; None when an abort already arrived
        (the step must not start)."""
        with self._lock:
            if self.requested.is_set():
                return None
            self._running = _Running(name, deferrable)
            return self._running.cancel

    def end(self) -> None:
        """The step ended: a deferred abort takes effect now."""
        with self._lock:
            running, self._running = self._running, None
            if running is not None and running.deferred:
                self._effective(running, self._clock(), stop=False)
