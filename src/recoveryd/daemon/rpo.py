"""Pure decisions about recovery point objectives, with the clock passed in.

Shared by the scheduler (catch-up after downtime, admission urgency), the
metrics/health endpoint and `recoveryd status`. No I/O, no adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SourceRpo:
    """What is known of one source: its objective and its last good snapshot."""

    name: str
    rpo_seconds: float | None
    last_snapshot: datetime | None  # end time of the newest complete snapshot, UTC


def age_seconds(last: datetime | None, now: datetime) -> float | None:
    return None if last is None else max(0.0, (now - last).total_seconds())


def is_overdue(src: SourceRpo, now: datetime) -> bool:
    """A source is overdue when its newest snapshot is older than its RPO (or there is none).

    A source without an RPO is never overdue: status then reports its age only.
    """
    if src.rpo_seconds is None:
        return False
    age = age_seconds(src.last_snapshot, now)
    return age is None or age > src.rpo_seconds


def catch_up(sources: Mapping[str, SourceRpo], now: datetime) -> list[str]:
    """Sources to snapshot once at start-up: those whose RPO is already broken.

    One run per source, however many schedule slots were missed while the
    daemon was down; sources within their RPO wait for their next slot.
    """
    return sorted(name for name, src in sources.items() if is_overdue(src, now))


def due_soon(src: SourceRpo, now: datetime, wait_seconds: float) -> bool:
    """True when deferring the snapshot by `wait_seconds` would break the RPO.

    The load governor then lets the job run (throttled) instead of making it wait.
    """
    if src.rpo_seconds is None:
        return False
    age = age_seconds(src.last_snapshot, now)
    return age is None or age + wait_seconds >= src.rpo_seconds
