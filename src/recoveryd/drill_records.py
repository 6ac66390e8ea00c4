"""The typed records of a drill journal: written by the runner, read by the reports.

One record per line of `state_dir/drills/RUN_ID/journal.jsonl` (hash-chained,
see `recoveryd.chain`). Every record has `type` and `time`; the other fields
are the models below. Writing goes through `to_fields` (unknown fields are a
programming error); reading goes through `parse`/`read_journal`, which are
tolerant: journals written by older versions load, a field of the wrong type
is dropped (its default is used) and a record of an unknown type is skipped,
so that one odd line never hides the rest of a run. The hash chain verifies
the bytes as written, independently of this module.

The outage of a drill is defined here once (`outage_window`) and used by the
runner (RTO in `run_finished`) and by the reports (RTO, impact, chart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from recoveryd.chain import HashChain
from recoveryd.records import RecordModel, jsonable, parse_tolerant

# how long after its step ended an older runner could have journaled a mark
_MARK_AFTER_STEP = timedelta(seconds=1)


_Model = RecordModel


class PlaybookRef(_Model):
    name: str = ""
    description: str = ""
    path: str | None = None
    sha256: str | None = None


class ObjectivesRef(_Model):
    rto_s: float | None = None
    rpo_s: float | None = None


class OwnersRef(_Model):
    government: str | None = None
    vendor: str | None = None


class _Record(_Model):
    time: datetime | None = None  # set by the journal when the record is written


class RunStarted(_Record):
    type: Literal["run_started"] = "run_started"
    run_id: str = ""
    playbook: PlaybookRef = Field(default_factory=PlaybookRef)
    operator: str = ""
    dry_run: bool = False
    objectives: ObjectivesRef = Field(default_factory=ObjectivesRef)
    owners: OwnersRef = Field(default_factory=OwnersRef)
    sources: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # what validating the playbook noticed


class PhaseRecord(_Record):
    type: Literal["phase"] = "phase"
    phase: str = ""
    status: str = ""  # started | passed | failed


class GuardRecord(_Model):
    """What the `only_if` probe of a step or rollback saw."""

    name: str = ""
    held: bool = False
    value: str = ""
    detail: str | None = None


class StepStarted(_Record):
    """A step is about to run (its `step` record follows when it ended)."""

    type: Literal["step_started"] = "step_started"
    phase: str = ""
    name: str = ""
    destructive: bool = False


class StepRecord(_Record):
    """A step, a probe (preflight, steady state, stop condition, canary) or a rollback.

    A step or rollback whose `only_if` did not hold is `skipped` with its `guard`; a
    rollback of a step cut short that has no `only_if` is `not_run` (see `drills/rollback.py`).
    """

    type: Literal["step", "probe", "rollback"] = "step"
    phase: str = ""
    name: str = ""
    kind: str = ""
    start: datetime | None = None
    end: datetime | None = None
    status: str = ""  # ok | failed | timeout | aborted | skipped | not_run | dry_run ...
    attempts: int | None = None
    destructive: bool = False
    output: str = ""
    error: str | None = None
    guard: GuardRecord | None = None


class MarkRecord(_Record):
    """`fault_start`, `fault` or `recovered`, taken when the step that carries it ends."""

    type: Literal["mark"] = "mark"
    mark: str = ""
    step: str | None = None  # the step that took the mark
    step_start: datetime | None = None  # when that step started


class ApprovalRecord(_Record):
    type: Literal["approval"] = "approval"
    user: str = ""
    key: str | None = None  # fingerprint of the approver's public key (signed approvals)


class StopConditionRecord(_Record):
    """A stop condition: `tripped` (the run is aborted) or `held`; `checks` counts how often
    it was evaluated so far (the monitor journals a sample, not every check)."""

    type: Literal["stop_condition"] = "stop_condition"
    name: str = ""
    status: str = "tripped"  # tripped | held
    detail: str = ""
    checks: int | None = None


class AbortRecord(_Record):
    """An abort (see `drills/abort.py`): `requested` when it arrives, `forced` when a second
    signal stops a deferred step, `effective` when it took effect."""

    type: Literal["abort"] = "abort"
    status: str = ""  # requested | forced | effective
    cause: str | None = None  # stop_condition | signal
    detail: str | None = None
    during: str | None = None  # the step running when it arrived or took effect
    deferred: bool | None = None  # (requested) whether it waits for that step to end
    requested_at: datetime | None = None  # (effective) when it was requested


class EventRecord(_Record):
    type: Literal["event"] = "event"
    kind: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class RunFinished(_Record):
    type: Literal["run_finished"] = "run_finished"
    status: str = ""
    rto_s: float | None = None
    rpo_s: float | None = None
    objectives_met: bool | None = None  # None: not judged (a dry run)
    steady_state_restored: bool | None = None  # None: no steady-state probe ran afterwards
    error: str | None = None


JournalRecord = Annotated[
    RunStarted
    | PhaseRecord
    | StepStarted
    | StepRecord
    | MarkRecord
    | ApprovalRecord
    | StopConditionRecord
    | AbortRecord
    | EventRecord
    | RunFinished,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[JournalRecord] = TypeAdapter(JournalRecord)


# --- writing


def journal_time(t: datetime) -> datetime:
    """`t` as the journal keeps it (milliseconds), so that what the runner measures from its
    own records equals what a report measures from the journal."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def to_fields(record: _Record) -> dict[str, Any]:
    """The JSON fields of `record` without `time` (the journal adds it), times in ISO 8601."""
    return {k: jsonable(v) for k, v in record.model_dump().items() if k != "time"}


# --- reading


def parse(raw: Mapping[str, Any]) -> JournalRecord | None:
    """The typed record of one journal line; fields of the wrong type are dropped, None for
    a record of an unknown type."""
    return parse_tolerant(_ADAPTER, raw)


def parse_all(raws: Iterable[Mapping[str, Any]]) -> list[JournalRecord]:
    """Every record that parses, in order, with older journals' gaps filled (`_fill_marks`)."""
    return _fill_marks([r for r in map(parse, raws) if r is not None])


def read_journal(path: Path) -> list[JournalRecord]:
    """The typed records of a journal file (the chain is verified separately)."""
    return parse_all(HashChain(path).records())


def _fill_marks(records: list[JournalRecord]) -> list[JournalRecord]:
    """Journals written before marks named their step: a mark follows the record of the step
    that took it, so that step's start is known all the same."""
    out: list[JournalRecord] = []
    last_step: StepRecord | None = None
    for r in records:
        if isinstance(r, MarkRecord) and r.step_start is None and _took(last_step, r):
            assert last_step is not None  # noqa: S101 - checked by _took
            r = r.model_copy(update={"step": last_step.name, "step_start": last_step.start})
        if isinstance(r, StepRecord) and r.type == "step":
            last_step = r
        out.append(r)
    return out


def _took(step: StepRecord | None, mark: MarkRecord) -> bool:
    """Whether `mark` was taken as `step` ended (the runner journals it right after)."""
    if step is None or step.end is None or mark.time is None:
        return False
    return timedelta(0) <= mark.time - step.end <= _MARK_AFTER_STEP


def first(records: Sequence[JournalRecord], kind: type[Any]) -> Any:
    """The first record of class `kind`, or None."""
    return next((r for r in records if isinstance(r, kind)), None)


# --- the outage, defined once


def outage_window(marks: Sequence[MarkRecord]) -> tuple[datetime | None, datetime | None]:
    """When the outage began and when the service was seen back (None when not recorded).

    It begins at the `fault_start` mark when the playbook has one, else when the step marked
    `fault` started (not when it ended: the outage begins as the fault is being made); it ends
    at the `recovered` mark.
    """
    start = next((m.time for m in marks if m.mark == "fault_start"), None)
    if start is None:
        fault = next((m for m in marks if m.mark == "fault"), None)
        if fault is not None:
            start = fault.step_start or fault.time
    end = next((m.time for m in marks if m.mark == "recovered"), None)
    return start, end


def outage_seconds(marks: Sequence[MarkRecord]) -> float | None:
    """The measured outage (the drill's RTO); None unless both ends were recorded."""
    start, end = outage_window(marks)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def build(type_: str, fields: Mapping[str, Any]) -> JournalRecord:
    """The typed record of `type_` made of `fields`; ValueError for an unknown type or field
    (a writer's mistake: the journal's contract is these models)."""
    model = _MODELS.get(type_)
    if model is None:
        raise ValueError(f"unknown journal record type {type_!r}")
    unknown = set(fields) - set(model.model_fields)
    if unknown:
        raise ValueError(f"journal record {type_!r} has no field {', '.join(sorted(unknown))}")
    if model is StepRecord:
        return StepRecord.model_validate({**fields, "type": type_})
    return _ADAPTER.validate_python({**fields, "type": type_})


_MODELS: dict[str, type[_Record]] = {
    "run_started": RunStarted,
    "phase": PhaseRecord,
    "step_started": StepStarted,
    "step": StepRecord,
    "probe": StepRecord,
    "rollback": StepRecord,
    "mark": MarkRecord,
    "approval": ApprovalRecord,
    "stop_condition": StopConditionRecord,
    "abort": AbortRecord,
    "event": EventRecord,
    "run_finished": RunFinished,
}
