"""`build_report`: a pure function from recorded data to the report model.

Input: one hash-chained record file (a drill journal or an incident record)
with its chain status, a `StateSnapshot` of the state store around it, the
time of rendering and a redactor. Every string taken from the records is
redacted before it enters the model. Nothing here reads files or clocks. A
drill journal is read through its typed records (`recoveryd.drill_records`),
an incident record through its own (`recoveryd.incident_records`); the
sentences and action items of a drill come from `drill_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from recoveryd import drill_records as dr
from recoveryd import incident_records as ir
from recoveryd.chain import ChainStatus
from recoveryd.reports import _common as c
from recoveryd.reports import drill_text as text
from recoveryd.reports.model import (
    Impact,
    Integrity,
    Mark,
    Msg,
    Objective,
    OutputRow,
    Owners,
    Report,
    StateSnapshot,
    StepRow,
    StopConditionRow,
    TimelineEntry,
)
from recoveryd.secrets import Redactor

OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class RecordFile:
    """A hash-chained record file as read from disk: its records in file order and chain status."""

    id: str
    path: str
    records: tuple[Mapping[str, Any], ...]
    chain: ChainStatus


def build_report(
    record: RecordFile,
    state: StateSnapshot,
    now: datetime,
    redact: Redactor,
    *,
    timezone: str = "UTC",
) -> Report:
    """The report of a drill journal (first record `run_started`) or an incident record
    (first record `opened`), its times to be shown in `timezone`. Raises ValueError when the
    file is neither."""
    records = tuple(c.redact_tree(dict(r), redact) for r in record.records)
    first = records[0].get("type") if records else None
    if first == "run_started":
        report = _build_drill(record, records, c.redact_state(state, redact), now)
    elif first == "opened":
        from recoveryd.reports.build_incident import build_incident

        report = build_incident(record, ir.parse_all(records), c.redact_state(state, redact), now)
    else:
        raise ValueError(f"{record.path}: neither a drill journal nor an incident record")
    return replace(report, timezone=timezone)


def _build_drill(
    record: RecordFile,
    raws: Sequence[Mapping[str, Any]],
    state: StateSnapshot,
    now: datetime,
) -> Report:
    recs = dr.parse_all(raws)
    started_rec: dr.RunStarted = dr.first(recs, dr.RunStarted) or dr.RunStarted()
    finished: dr.RunFinished | None = dr.first(recs, dr.RunFinished)
    started = started_rec.time or now
    ended = finished.time if finished is not None else c.last_time(raws)
    playbook = started_rec.playbook
    name = playbook.name or record.id
    mark_recs = [r for r in recs if isinstance(r, dr.MarkRecord) and r.time is not None]
    marks = _marks(mark_recs, started)
    objectives = _objectives(started_rec, finished, mark_recs)
    status = _status(started_rec, finished, objectives)
    steps = _steps(recs)
    sources = tuple(started_rec.sources)
    outage_start = dr.outage_window(mark_recs)[0]
    fault_at = outage_start or started
    backups = c.backup_rows(sources, state, fault_at)
    events = c.merged_events(_journal_events(recs), state, started, ended or now)
    impact = Impact(
        duration_s=(ended - started).total_seconds() if ended else None,
        outage_s=objectives[0].achieved_s,
        services=c.services(sources, events),
        requests_shed=c.requests_shed(events),
        data_at_risk_s=objectives[1].achieved_s,
        fault_recorded=outage_start is not None,
        outage_start=outage_start,
    )
    owners = Owners(started_rec.owners.government, started_rec.owners.vendor)
    integrity = Integrity(
        chain_ok=record.chain.ok,
        records=record.chain.records,
        head=record.chain.head,
        problem=record.chain.problem,
        record_path=record.path,
        playbook_path=playbook.path or None,
        playbook_sha256=playbook.sha256 or None,
    )
    report = Report(
        kind="drill",
        id=record.id,
        title=name,
        description=playbook.description,
        status=status,
        started=started,
        ended=ended,
        generated=now,
        operator=started_rec.operator,
        severity=None,
        dry_run=started_rec.dry_run,
        complete=finished is not None,
        objectives=objectives,
        summary=(),
        impact=impact,
        timeline=(),
        marks=marks,
        steps=steps,
        stop_conditions=_stop_conditions(recs),
        backups=backups,
        owners=owners,
        actions=(),
        outputs=_outputs(recs),
        integrity=integrity,
        approvers=tuple(dict.fromkeys(r.user for r in recs if isinstance(r, dr.ApprovalRecord))),
    )
    base = (ended or started).date()
    error = finished.error if finished is not None else None
    end_row = (report.status, text.cause(report, error))
    timeline = _timeline(recs, started, end_row) + c.state_timeline(
        events, state.runs, started, until=ended
    )
    return replace(
        report,
        timeline=tuple(sorted(timeline, key=lambda e: e.time)),
        summary=text.summary(report, error, c.shed_count(events)),
        actions=text.actions(report, base) + c.common_actions(report, base),
    )


def _status(
    started: dr.RunStarted, finished: dr.RunFinished | None, objectives: Sequence[Objective]
) -> str:
    """The run's status as recorded; `dry_run` for a dry run that went through; `missed` when
    every step succeeded yet a promise was broken (not a pass)."""
    if finished is None:
        return "running"
    status = finished.status or "failed"
    if status == "passed" and started.dry_run:
        return "dry_run"
    missed = any(o.met is False for o in objectives) or finished.objectives_met is False
    return "missed" if status == "passed" and missed else status


def _journal_events(recs: Sequence[dr.JournalRecord]) -> list[c.EventView]:
    return [
        c.EventView(r.time, r.kind, None, r.data, True)
        for r in recs
        if isinstance(r, dr.EventRecord) and r.time is not None
    ]


def _marks(marks: Sequence[dr.MarkRecord], started: datetime) -> tuple[Mark, ...]:
    return tuple(Mark(m.mark, m.time, (m.time - started).total_seconds()) for m in marks if m.time)


def _objectives(
    started: dr.RunStarted, finished: dr.RunFinished | None, marks: Sequence[dr.MarkRecord]
) -> tuple[Objective, Objective]:
    """RTO is the outage as `drill_records.outage_window` defines it (journals without marks
    keep the RTO they recorded); a dry run measures nothing."""
    obj = started.objectives
    if started.dry_run:
        return Objective("rto", obj.rto_s, None), Objective("rpo", obj.rpo_s, None)
    rto = dr.outage_seconds(marks)
    if rto is None and not marks and finished is not None:
        rto = finished.rto_s
    rpo = finished.rpo_s if finished is not None else None
    return Objective("rto", obj.rto_s, rto), Objective("rpo", obj.rpo_s, rpo)


# continuously checked probes: only failures are worth a line of their own
_QUIET_PHASES = ("stop_condition", "canary")


def _step_recs(recs: Sequence[dr.JournalRecord]) -> list[dr.StepRecord]:
    return [r for r in recs if isinstance(r, dr.StepRecord)]


def _steps(recs: Sequence[dr.JournalRecord]) -> tuple[StepRow, ...]:
    return tuple(
        StepRow(
            phase=r.phase or ("rollback" if r.type == "rollback" else ""),
            name=r.name,
            kind=r.kind,
            record_type=r.type,
            start=r.start or r.time,
            end=r.end,
            status=r.status,
            attempts=r.attempts,
            destructive=r.destructive,
            error=r.error or "",
            guard=r.guard.name if r.guard is not None and not r.guard.held else None,
        )
        for r in _step_recs(recs)
        if r.phase not in _QUIET_PHASES
    )


def _stop_conditions(recs: Sequence[dr.JournalRecord]) -> tuple[StopConditionRow, ...]:
    """One row per condition: how often it was checked (the journaled count, or the checks
    journaled one by one in older journals), whether it tripped, and why."""
    checks: dict[str, int] = {}
    status: dict[str, str] = {}
    detail: dict[str, str] = {}
    for r in recs:
        if isinstance(r, dr.StepRecord) and r.type == "probe" and r.phase == "stop_condition":
            checks[r.name] = checks.get(r.name, 0) + 1
            if r.status not in ("ok", "dry_run") and status.get(r.name) != "tripped":
                status[r.name] = "failed"
                detail[r.name] = r.error or r.output
            status.setdefault(r.name, "ok")
        elif isinstance(r, dr.StopConditionRecord):
            checks[r.name] = max(checks.get(r.name, 0), r.checks or 0)
            if r.status == "tripped":
                status[r.name] = "tripped"
                detail[r.name] = r.detail
    return tuple(
        StopConditionRow(n, checks[n], status.get(n, "ok"), detail.get(n, "")) for n in checks
    )


def _outputs(recs: Sequence[dr.JournalRecord]) -> tuple[OutputRow, ...]:
    out = []
    for r in _step_recs(recs):
        if r.phase in _QUIET_PHASES and r.status == "ok":
            continue
        output = r.output.strip()
        if output:
            if len(output) > OUTPUT_LIMIT:
                output = output[:OUTPUT_LIMIT] + " […]"
            out.append(OutputRow(r.phase or r.type, r.name, output))
    return tuple(out)


def _timeline(
    recs: Sequence[dr.JournalRecord], started: datetime, end_row: tuple[str, Msg | str]
) -> list[TimelineEntry]:
    """The journal's rows; the last one shows the run's status and why it ended so."""
    out: list[TimelineEntry] = []
    for r in recs:
        entry = _journal_entry(r, started, end_row)
        if entry is not None:
            out.append(entry)
    return out


def _journal_entry(
    r: dr.JournalRecord, started: datetime, end_row: tuple[str, Msg | str]
) -> TimelineEntry | None:
    t = (r.start or r.time) if isinstance(r, dr.StepRecord) else r.time
    if t is None:
        return None
    off = (t - started).total_seconds()
    if isinstance(r, dr.RunStarted):
        detail = Msg.of("d_started", operator=r.operator or "?")
        return TimelineEntry(t, off, "started", "", None, detail)
    if isinstance(r, dr.RunFinished):
        return TimelineEntry(t, off, "finished", "", *end_row)
    if isinstance(r, dr.PhaseRecord):
        if r.status != "failed":
            return None
        return TimelineEntry(t, off, "phase", Msg(f"phase_{r.phase}"), r.status, "")
    if isinstance(r, dr.StepRecord):
        if r.phase in _QUIET_PHASES and r.status == "ok":
            return None
        return TimelineEntry(t, off, r.type, r.name, r.status, r.error or "", r.phase)
    if isinstance(r, dr.MarkRecord):
        return TimelineEntry(t, off, "mark", Msg(f"mark_{r.mark}"), None, "")
    if isinstance(r, dr.ApprovalRecord):
        return TimelineEntry(t, off, "approval", "", None, Msg.of("d_approval", user=r.user))
    if isinstance(r, dr.StopConditionRecord):
        if r.status != "tripped":
            return None
        return TimelineEntry(t, off, "stop_condition", r.name, "tripped", r.detail)
    if isinstance(r, dr.AbortRecord):
        return _abort_entry(r, t, off)
    if isinstance(r, dr.StepStarted):
        return None  # the step's own record follows, with its start
    return TimelineEntry(
        t, off, "event", c.event_name(r.kind), None, c.event_detail(r.kind, r.data)
    )


def _abort_entry(r: dr.AbortRecord, t: datetime, off: float) -> TimelineEntry:
    """An abort as it arrived (by whom), was forced, or took effect (see `drills/abort.py`)."""
    step = r.during or ""
    if r.status == "requested":
        by = "d_abort_by_signal" if r.cause == "signal" else "d_abort_by_stop_condition"
        detail = Msg.of("d_abort_deferred", step=step) if r.deferred else Msg(by)
    elif r.status == "forced":
        detail = Msg.of("d_abort_forced", step=step)
    else:
        detail = Msg("d_abort_effective")
    return TimelineEntry(t, off, "abort", Msg(f"abort_{r.status}"), None, detail)
