"""Fencing a fleet member: it stops its jobs before its etcd lease can run out.

A member's key in the group and the slot locks it holds live on etcd leases of
`fleet.lease` seconds, which its refreshes renew. etcd counts a lease from the
moment it granted or renewed it, which is after the member sent that request;
so, counted on the member's own clock from the *sending* of its last answered
refresh, no other member can take its locks before `lease` seconds have passed.

The member refreshes every third of the lease, counted from the sending of the
previous refresh (every tenth after a failure), and fences itself when the lease
has less than `MARGIN` of its length left: `margin = lease / 3`, the fence at two
thirds of a lease after the last answered refresh was sent. At the fence it stops
its running jobs at once (their claims are lost: a backup aborts at its next
chunk boundary, nothing committed) and takes no new job until etcd answers again
(a job of its own that comes due meanwhile waits up to a lease for that). The
margin is what those jobs have to stop before another member can take their slots.
A refresh answered only after the lease could have run out (the process was
frozen, the network held it back) renews nothing that was held: the claims of
that time are lost too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MARGIN = 1 / 3  # of the lease: what is left of it when the member fences itself
REFRESH = 1 / 3  # of the lease: how often the member refreshes it
RETRY = 1 / 10  # of the lease: how soon a failed refresh is tried again


@dataclass
class LeaseFence:
    """When this member must consider its lease gone, on its own monotonic clock."""

    lease: float
    monotonic: Callable[[], float] = time.monotonic
    _sent: float | None = None  # when the last answered refresh was sent
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def margin(self) -> float:
        return self.lease * MARGIN

    def deadline(self) -> float | None:
        """The monotonic time of the fence; None before any refresh was answered."""
        with self._guard:
            return None if self._sent is None else self._sent + self.lease - self.margin

    def remaining(self) -> float:
        """Seconds until the fence (0 when fenced)."""
        deadline = self.deadline()
        return 0.0 if deadline is None else max(0.0, deadline - self.monotonic())

    def fenced(self) -> bool:
        """No refresh answered yet, or the last one was sent too long ago."""
        deadline = self.deadline()
        return deadline is None or self.monotonic() >= deadline

    def renewed(self, sent: float, answered: float) -> bool:
        """A refresh sent at `sent` was answered at `answered`: the lease lives until at
        least `sent + lease`. True when the lease held throughout: the answer came before
        the previous lease could have run out (or there was none); False when etcd may
        have let it expire before the refresh reached it."""
        with self._guard:
            held = self._sent is None or answered < self._sent + self.lease
            if self._sent is None or sent > self._sent:
                self._sent = sent
            return held


@dataclass
class Keeper:
    """Two threads: one refreshes the lease (`refresh` returns whether etcd answered),
    the other fences at the deadline (`fence`), even while a refresh hangs."""

    fence_state: LeaseFence
    refresh: Callable[[], bool]
    fence: Callable[[], None]
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for target, name in ((self._refresher, "fleet-refresh"), (self._watch, "fleet-fence")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def renewed(self) -> None:
        """A refresh was answered: the watcher counts from the new deadline."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _refresher(self) -> None:
        """Every third of a lease (the member refreshed once when it started), every
        tenth after a refresh that was not answered."""
        lease, clock = self.fence_state.lease, self.fence_state.monotonic
        wait = lease * REFRESH
        while not self._stop.wait(wait):
            began = clock()
            answered = self.refresh()
            # counted from the sending: after a slow answer the next refresh goes at once
            wait = max(0.0, lease * REFRESH - (clock() - began)) if answered else lease * RETRY

    def _watch(self) -> None:
        while not self._stop.is_set():
            deadline = self.fence_state.deadline()
            wait = None if deadline is None else deadline - self.fence_state.monotonic()
            if wait is not None and wait <= 0:
                self.fence()
                wait = None  # fenced: nothing to do until a refresh is answered
            if self._wake.wait(wait):
                self._wake.clear()
