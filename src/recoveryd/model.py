"""Typed, frozen domain objects that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

VerifiedState = Literal["ok", "failed"] | None


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as listed (`snapshots --json`, README "JSON documents")."""

    id: str
    source: str
    kind: str
    time: datetime  # end time, UTC
    size: int  # logical bytes of the stream
    stored_size: int  # bytes of new objects this snapshot added to the store
    targets: tuple[str, ...] = ()
    verified: VerifiedState = None
    classification: str = "internal"
    start_time: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "size": self.size,
            "stored_size": self.stored_size,
            "targets": list(self.targets),
            "verified": self.verified,
        }


@dataclass(frozen=True)
class BackupResult:
    """One source's snapshot written to its targets (`backup --json`, README "JSON documents")."""

    id: str
    source: str
    targets: tuple[str, ...]
    size: int
    stored_size: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "source": self.source,
            "targets": list(self.targets),
            "size": self.size,
            "stored_size": self.stored_size,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Problem:
    """One integrity problem found by verify: which snapshot, which object, what."""

    snapshot: str | None
    obj: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    snapshots: tuple[str, ...]
    objects_checked: int
    bytes_read: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems
