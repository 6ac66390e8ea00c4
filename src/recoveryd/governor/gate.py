"""The gate running work passes at chunk boundaries: pause, throttle, narrow concurrency.

A GovernedGate asks its governor (through the small `GateHost` protocol) what its
priority may do at the current level. `checkpoint()` blocks while paused and
gives up after `max_pause` (InterruptedOperation: nothing is committed, the job is
retried later), `throttle()` keeps the AIMD-adapted rate (a wait that its `cancel` or the
governor's stop ends at once), `concurrency()` narrows parallel uploads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from recoveryd import flow
from recoveryd.errors import InterruptedOperation
from recoveryd.governor import decide


class GateHost(Protocol):
    """What a gate needs of its governor."""

    max_pause: float

    @property
    def stopping(self) -> threading.Event: ...

    def level(self) -> str: ...

    def policy(self, priority: str, *, override: bool = False) -> decide.GatePolicy: ...

    def throttle_factor(self) -> float: ...

    def throttled_rate(self) -> float: ...

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool: ...

    def must_pause(self, gate: GovernedGate) -> bool: ...

    def set_paused(self, gate: GovernedGate, paused: bool) -> None: ...

    def record(self, kind: str, data: Mapping[str, Any]) -> None: ...


class GovernedGate:
    """A flow.Gate that pauses, throttles and narrows concurrency as the level demands."""

    def __init__(
        self,
        governor: GateHost,
        priority: str,
        *,
        job: str,
        override: bool,
        cancel: threading.Event | None = None,
    ) -> None:
        self._gov = governor
        self.priority = priority
        self.job = job
        self.override = override
        self.cancel = cancel if cancel is not None else threading.Event()
        self._bucket = flow.TokenBucket(None, cancel=flow.AnyEvent(self.cancel, governor.stopping))
        self.pauses = 0

    def checkpoint(self) -> None:
        """Block while this priority is paused; InterruptedOperation past max_pause or cancel."""
        if self.cancel.is_set():
            raise InterruptedOperation(flow.INTERRUPTED)
        if not self._gov.policy(self.priority, override=self.override).paused:
            return
        self.pauses += 1
        started = time.monotonic()
        data = {"job": self.job, "priority": self.priority, "level": self._gov.level()}
        self._gov.set_paused(self, True)
        self._gov.record("paused", data)
        try:
            resumed = self._gov.wait_for(
                lambda: not self._gov.must_pause(self), self._gov.max_pause
            )
        finally:
            self._gov.set_paused(self, False)
        waited = round(time.monotonic() - started, 3)
        if self.cancel.is_set() or self._gov.stopping.is_set():
            raise InterruptedOperation("interrupted while paused; the snapshot was not committed")
        if not resumed:
            self._gov.record("abandoned", {**data, "paused_s": waited})
            raise InterruptedOperation(
                f"{self.job}: paused by the load governor longer than governor.max_pause "
                f"({self._gov.max_pause:g}s); nothing was committed and it will be retried later"
            )
        self._gov.record("resumed", {**data, "level": self._gov.level(), "paused_s": waited})

    def throttle(self, nbytes: int) -> None:
        """Wait for the throttled rate; InterruptedOperation at once on cancel or stop."""
        if not self._gov.policy(self.priority, override=self.override).throttled:
            return
        self._bucket.set_rate(self._gov.throttled_rate())
        self._bucket.take(nbytes)

    def concurrency(self, configured: int) -> int:
        if not self._gov.policy(self.priority, override=self.override).throttled:
            return configured
        return decide.throttled_concurrency(configured, self._gov.throttle_factor())
