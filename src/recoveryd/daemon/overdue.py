"""Overdue alerts of the daemon: a source whose newest snapshot is older than its RPO.

Each change is told once: an `overdue` event and alert when a source goes past its
RPO, an `overdue_cleared` event and a `recovery` alert when a new snapshot brings it
back within it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from recoveryd.daemon.notify import Alert
from recoveryd.daemon.rpo import SourceRpo, is_overdue
from recoveryd.state import StateStore


class OverdueWatch:
    """The sources known to be overdue, and the events and alerts when that changes."""

    def __init__(self, state: StateStore, notify: Callable[[Alert], object]) -> None:
        self._state = state
        self._notify = notify
        self._overdue: set[str] = set()

    def update(self, sources: Mapping[str, SourceRpo], now: datetime) -> None:
        """Compare `sources` at `now` with the last update; tell what changed."""
        overdue = {n for n, s in sources.items() if is_overdue(s, now)}
        for name in sorted(overdue - self._overdue):
            rpo = sources[name].rpo_seconds
            self._state.record_event("overdue", {"rpo_seconds": rpo}, source=name)
            self._notify(
                Alert("overdue", f"{name} is overdue",
                      f"The newest snapshot of {name} is older than its RPO ({rpo:g}s).",
                      source=name)
            )  # fmt: skip
        for name in sorted(self._overdue - overdue):
            self._state.record_event("overdue_cleared", {}, source=name)
            self._notify(
                Alert("recovery", f"{name} is within its RPO again", "A new snapshot was stored.",
                      source=name)
            )  # fmt: skip
        self._overdue = overdue
