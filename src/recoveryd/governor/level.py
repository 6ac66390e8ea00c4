"""The pressure level as the state store last recorded it, for processes without a governor.

The daemon's governor records every level change; a CLI command (another process)
reads the level from there to refuse work while shedding is in force (exit 5,
unless `--force`). A governor that stops records the return to `normal`, so a
stopped daemon never leaves a stale `critical` behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from recoveryd.governor.decide import Level, admit


class _Event(Protocol):
    @property
    def time(self) -> datetime: ...

    @property
    def data(self) -> object: ...


class EventReader(Protocol):
    """What this needs of `state.StateStore`."""

    def events(
        self, *, kinds: tuple[str, ...] | None = None, limit: int = ...
    ) -> Sequence[_Event]: ...


@dataclass(frozen=True)
class RecordedLevel:
    level: Level
    since: datetime | None


def recorded_level(state: EventReader) -> RecordedLevel:
    """The level of the newest `level_change` event; `normal` when none was recorded."""
    found = state.events(kinds=("level_change",), limit=1_000_000)
    if not found:
        return RecordedLevel("normal", None)
    last = found[-1]
    data = last.data if isinstance(last.data, dict) else {}
    level = data.get("to", "normal")
    if level not in ("normal", "elevated", "critical"):
        level = "normal"
    return RecordedLevel(level, last.time)


def refusal(state: EventReader, priority: str, *, job: str) -> str | None:
    """Why `job` of `priority` must not start now (the CLI exits 5 with it), or None."""
    current = recorded_level(state)
    if admit(current.level, priority).verdict != "wait":
        return None
    return (
        f"{job}: load shedding is in force (level {current.level}); "
        "it runs when the pressure drops, or now with --force"
    )
