"""The port the daemon core uses for fleet mode: membership, heartbeats and slot locks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from recoveryd.errors import RecoverydError


class CoordinationError(RecoverydError):
    """The coordination service did not answer on any of its URLs (transient)."""

    transient = True


@dataclass(frozen=True)
class Member:
    """A live member of the group as the coordination service lists it."""

    name: str
    serves: tuple[str, ...] = ()  # site labels; empty: every site
    heartbeat: datetime | None = None  # the member's own clock at its last heartbeat
    jobs: int = 0  # how many jobs the member said it owns at that heartbeat

    @property
    def site(self) -> str | None:
        """The member's own site: the first label it serves."""
        return self.serves[0] if self.serves else None

    def serves_site(self, site: str | None) -> bool:
        """A job of `site` (None: of no site) may run on this member."""
        return not self.serves or site is None or site in self.serves


@dataclass(frozen=True)
class SlotRecord:
    """A run of a job in one schedule slot, as the member that ran it recorded it when the
    run ended (success or failure)."""

    result: str  # the run's result: ok, degraded, failed, integrity, refused...
    member: str
    ended: datetime | None = None
    run: int = 1  # which run of the job in its slot (2: a catch-up rerun of a failed backup)


class SlotLock(Protocol):
    """A lock named after a job and its schedule slot, held while the job runs.

    It expires one lease after its holder stops heartbeating (a dead member's lock
    frees itself); `release` is idempotent and never raises."""

    def acquire(self) -> bool:
        """Take the lock without waiting: True when taken, False when another holds it.
        Raises CoordinationError when the service does not answer."""
        ...

    def release(self) -> None: ...


class Coordination(Protocol):
    """One member's connection to the group."""

    member: str
    group: str

    def join(self) -> None:
        """Join the group (creating it when needed); joining again is harmless.
        Raises CoordinationError when no URL answers."""
        ...

    def heartbeat(self, jobs: int) -> None:
        """Renew this member's lease and its held locks, and publish its heartbeat time
        and job count; rejoins when the lease had expired. CoordinationError when no URL
        answers (the next URL of the list is tried first)."""
        ...

    def members(self) -> list[Member]:
        """The live members, sorted by name. CoordinationError when no URL answers."""
        ...

    def lock(self, name: str) -> SlotLock:
        """A (not yet acquired) lock of this name in the group."""
        ...

    def record_slot(self, name: str, record: SlotRecord, ttl: float) -> None:
        """Record that the run `name` (`<job>@<slot>`) ended, for `ttl` seconds (then the
        record expires by itself); writing it again replaces it. CoordinationError when
        no URL answers."""
        ...

    def slot_record(self, name: str) -> SlotRecord | None:
        """The record of the run `name`, None when there is none (never recorded, or
        expired). CoordinationError when no URL answers."""
        ...

    def leave(self) -> None:
        """Leave the group and close the connection (never raises)."""
        ...
