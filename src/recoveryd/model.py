"""Typed, frozen domain objects that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

VerifiedState = Literal["ok", "failed"] | None


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as listed (SPEC §1 `snapshots --json`)."""

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
    # the verified state of each copy, (target, state), when known from the state store;
    # `verified` is then their summary (failed if one failed, ok if all verified ok)
    copies: tuple[tuple[str, VerifiedState], ...] = ()

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
            "verified_by_target": dict(self.copies),
        }


@dataclass(frozen=True)
class MissingTarget:
    """A target a snapshot should have reached but did not, and why."""

    target: str
    error: str

    def to_json(self) -> dict[str, str]:
        return {"target": self.target, "error": self.error}


@dataclass(frozen=True)
class BackupResult:
    """One source's snapshot written to its targets (README `backup --json`).

    `targets` are those that committed it; `missing_targets` those of the source that
    did not (unreachable): the snapshot is then under-replicated (degraded, exit 6)."""

    id: str
    source: str
    targets: tuple[str, ...]
    size: int
    stored_size: int
    seconds: float
    missing_targets: tuple[MissingTarget, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.missing_targets)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "source": self.source,
            "targets": list(self.targets),
            "missing_targets": [m.to_json() for m in self.missing_targets],
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
