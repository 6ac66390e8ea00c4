"""The report model: typed, frozen, language-neutral.

Built by `recoveryd.reports.build.build_report` from recorded data only;
renderers (Markdown, HTML, PDF) render it and nothing else. Sentences are
`Msg` (a catalog key and parameters) so that one model renders in every
language; durations travel as `Dur` and times as `datetime` so that the
renderer localises them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from recoveryd.state import Event, Run

ReportKind = Literal["drill", "incident"]


@dataclass(frozen=True)
class Dur:
    """A duration in seconds, localised when rendered."""

    seconds: float


@dataclass(frozen=True)
class Msg:
    """A translatable sentence: catalog `key` with named parameters."""

    key: str
    params: tuple[tuple[str, Param], ...] = ()

    @classmethod
    def of(cls, key: str, **params: Param) -> Msg:
        return cls(key, tuple(params.items()))


Param = str | int | float | datetime | date | Dur | Msg


@dataclass(frozen=True)
class Objective:
    """RTO or RPO: the promise, what was achieved, and whether the promise held."""

    name: Literal["rto", "rpo"]
    target_s: float | None
    achieved_s: float | None

    @property
    def met(self) -> bool | None:
        """None when there is no objective or nothing was measured."""
        if self.target_s is None or self.achieved_s is None:
            return None
        return self.achieved_s <= self.target_s


@dataclass(frozen=True)
class Impact:
    duration_s: float | None
    outage_s: float | None
    services: tuple[str, ...]
    requests_shed: int | None
    data_at_risk_s: float | None
    fault_recorded: bool = False  # a fault was made, whether or not recovery was measured
    outage_start: datetime | None = None  # see `drill_records.outage_window`


@dataclass(frozen=True)
class TimelineEntry:
    """One row of the timeline: when, what (a kind label + a name), status and detail."""

    time: datetime
    offset_s: float
    kind: str  # step, probe, mark, rollback, approval, stop_condition, event, phase, note, ...
    name: Msg | str
    status: str | None
    detail: Msg | str
    phase: str | None = None


@dataclass(frozen=True)
class StepRow:
    phase: str
    name: str
    kind: str
    record_type: str  # step | probe | rollback
    start: datetime | None
    end: datetime | None
    status: str
    attempts: int | None
    destructive: bool
    error: str
    guard: str | None = None  # the `only_if` that did not hold (the step was skipped)

    @property
    def duration_s(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class StopConditionRow:
    name: str
    checks: int
    status: str  # ok | tripped | failed
    detail: str


@dataclass(frozen=True)
class BackupRow:
    """A source's backups as they stood at the fault (drills) or the opening (incidents)."""

    source: str
    rpo_s: float | None
    last_snapshot: datetime | None
    snapshot_id: str | None
    age_s: float | None
    last_verify: datetime | None
    last_verify_result: str | None
    last_restore_drill: datetime | None
    last_restore_drill_rto_s: float | None

    @property
    def overdue(self) -> bool | None:
        if self.rpo_s is None:
            return None
        if self.age_s is None:
            return True
        return self.age_s > self.rpo_s


@dataclass(frozen=True)
class Owners:
    government: str | None
    vendor: str | None


@dataclass(frozen=True)
class ActionItem:
    text: Msg | str
    owner: Msg | str
    due: date | None
    origin: Literal["generated", "recorded"]
    raised: datetime | None = None
    raised_by: str | None = None


@dataclass(frozen=True)
class OutputRow:
    phase: str
    name: str
    output: str


@dataclass(frozen=True)
class Mark:
    mark: str  # fault_start | fault | recovered
    time: datetime
    offset_s: float


@dataclass(frozen=True)
class Integrity:
    """Tamper evidence: whether the hash chain verifies, its head, the playbook's hash."""

    chain_ok: bool
    records: int
    head: str
    problem: str | None
    record_path: str
    playbook_path: str | None
    playbook_sha256: str | None


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    id: str
    title: str
    description: str
    status: str  # passed | missed (steps passed, objective missed) | failed | aborted | dry_run
    #              | running (no final record) | open | closed (incidents)
    started: datetime
    ended: datetime | None
    generated: datetime
    operator: str
    severity: str | None
    dry_run: bool
    complete: bool
    objectives: tuple[Objective, ...]
    summary: tuple[Msg, ...]
    impact: Impact
    timeline: tuple[TimelineEntry, ...]
    marks: tuple[Mark, ...]
    steps: tuple[StepRow, ...]
    stop_conditions: tuple[StopConditionRow, ...]
    backups: tuple[BackupRow, ...]
    owners: Owners
    actions: tuple[ActionItem, ...]
    outputs: tuple[OutputRow, ...]
    integrity: Integrity
    approvers: tuple[str, ...] = ()
    timezone: str = "UTC"  # an IANA name; the renderers show every time in it

    @property
    def tampered(self) -> bool:
        return not self.integrity.chain_ok

    def objective(self, name: str) -> Objective | None:
        return next((o for o in self.objectives if o.name == name), None)


@dataclass(frozen=True)
class SourceHistory:
    """Recorded runs of one source (newest first), from the state store."""

    name: str
    rpo_s: float | None
    backups: tuple[Run, ...] = ()
    verifies: tuple[Run, ...] = ()
    restore_drills: tuple[Run, ...] = ()


@dataclass(frozen=True)
class DrillRun:
    """A drill run found in the state directory (its journal's first and last records)."""

    run_id: str
    name: str
    started: datetime
    ended: datetime | None
    status: str  # passed | failed | aborted | running


@dataclass(frozen=True)
class StateSnapshot:
    """What the state store recorded around a run: events and runs in its window, per-source
    history of the sources involved. Loaded by `recoveryd.reports.load`; empty is valid."""

    events: tuple[Event, ...] = ()
    runs: tuple[Run, ...] = ()
    sources: Mapping[str, SourceHistory] = field(default_factory=dict)
    drills: tuple[DrillRun, ...] = ()
