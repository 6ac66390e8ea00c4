"""`build_report`: a pure function from recorded data to the report model.

Input: one hash-chained record file (a drill journal or an incident record)
with its chain status, a `StateSnapshot` of the state store around it, the
time of rendering and a redactor. Every string taken from the records is
redacted before it enters the model. Nothing here reads files or clocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from recoveryd.chain import ChainStatus
from recoveryd.reports import _common as c
from recoveryd.reports.model import (
    ActionItem,
    Dur,
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
from recoveryd.reports.redact import Redactor

# a failed objective or a broken record becomes an action item due this many days later
ACTION_DUE_DAYS = 14
OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class RecordFile:
    """A hash-chained record file as read from disk: its records in file order and chain status."""

    id: str
    path: str
    records: tuple[Mapping[str, Any], ...]
    chain: ChainStatus


def build_report(
    record: RecordFile, state: StateSnapshot, now: datetime, redact: Redactor
) -> Report:
    """The report of a drill journal (first record `run_started`) or an incident record
    (first record `opened`). Raises ValueError when the file is neither."""
    records = tuple(c.redact_tree(dict(r), redact) for r in record.records)
    first = records[0].get("type") if records else None
    if first == "run_started":
        return _build_drill(record, records, c.redact_state(state, redact), now)
    if first == "opened":
        from recoveryd.reports.build_incident import build_incident

        return build_incident(record, records, c.redact_state(state, redact), now)
    raise ValueError(f"{record.path}: neither a drill journal nor an incident record")


def _build_drill(
    record: RecordFile,
    records: Sequence[Mapping[str, Any]],
    state: StateSnapshot,
    now: datetime,
) -> Report:
    started_rec = records[0]
    finished = next((r for r in records if r.get("type") == "run_finished"), None)
    started = c.rec_time(started_rec) or now
    ended = c.rec_time(finished) if finished else c.last_time(records)
    playbook = c.mapping(started_rec.get("playbook"))
    name = str(playbook.get("name") or record.id)
    dry_run = bool(started_rec.get("dry_run"))
    status = str(finished.get("status")) if finished else "running"

    marks = _marks(records, started)
    objectives = _objectives(started_rec, finished, marks)
    missed = (
        any(o.met is False for o in objectives) or (finished or {}).get("objectives_met") is False
    )
    if status == "passed" and missed:
        status = "missed"  # every step succeeded, yet a promise was broken: not a pass
    steps = _steps(records)
    stops = _stop_conditions(records)
    sources = tuple(str(s) for s in c.seq(started_rec.get("sources")))
    fault_at = next((m.time for m in marks if m.mark == "fault"), started)
    backups = c.backup_rows(sources, state, fault_at)
    events = c.merged_events(records, state, started, ended or now)
    fault = next((m for m in marks if m.mark == "fault"), None)
    recovered = next((m for m in marks if m.mark == "recovered"), None)
    outage = None
    if fault is not None:
        outage = ((recovered.time if recovered else ended or now) - fault.time).total_seconds()
    rpo = objectives[1].achieved_s
    impact = Impact(
        duration_s=(ended - started).total_seconds() if ended else None,
        outage_s=outage,
        services=c.services(sources, events),
        requests_shed=c.requests_shed(events),
        data_at_risk_s=rpo,
    )
    owners_map = c.mapping(started_rec.get("owners"))
    owners = Owners(c.opt_str(owners_map.get("government")), c.opt_str(owners_map.get("vendor")))
    integrity = Integrity(
        chain_ok=record.chain.ok,
        records=record.chain.records,
        head=record.chain.head,
        problem=record.chain.problem,
        record_path=record.path,
        playbook_path=c.opt_str(playbook.get("path")),
        playbook_sha256=c.opt_str(playbook.get("sha256")),
    )
    timeline = _timeline(records, started) + c.state_timeline(
        events, state.runs, started, until=ended
    )
    base = (ended or started).date()
    report = Report(
        kind="drill",
        id=record.id,
        title=name,
        description=str(playbook.get("description") or ""),
        status=status,
        started=started,
        ended=ended,
        generated=now,
        operator=str(started_rec.get("operator") or ""),
        severity=None,
        dry_run=dry_run,
        complete=finished is not None,
        objectives=objectives,
        summary=(),
        impact=impact,
        timeline=tuple(sorted(timeline, key=lambda e: e.time)),
        marks=marks,
        steps=steps,
        stop_conditions=stops,
        backups=backups,
        owners=owners,
        actions=(),
        outputs=_outputs(records),
        integrity=integrity,
    )
    actions = _drill_actions(report, finished, base) + c.common_actions(report, base)
    summary = _drill_summary(report, finished, name, c.shed_count(events))
    return replace(report, summary=summary, actions=actions)


def _marks(records: Iterable[Mapping[str, Any]], started: datetime) -> tuple[Mark, ...]:
    out = []
    for r in records:
        t = c.rec_time(r)
        if r.get("type") == "mark" and t is not None:
            out.append(Mark(str(r.get("mark")), t, (t - started).total_seconds()))
    return tuple(out)


def _objectives(
    started_rec: Mapping[str, Any], finished: Mapping[str, Any] | None, marks: Sequence[Mark]
) -> tuple[Objective, Objective]:
    obj = c.mapping(started_rec.get("objectives"))
    fin = finished or {}
    rto = c.opt_float(fin.get("rto_s"))
    if rto is None:
        fault = next((m for m in marks if m.mark == "fault"), None)
        rec = next((m for m in marks if m.mark == "recovered"), None)
        if fault is not None and rec is not None:
            rto = (rec.time - fault.time).total_seconds()
    return (
        Objective("rto", c.opt_float(obj.get("rto_s")), rto),
        Objective("rpo", c.opt_float(obj.get("rpo_s")), c.opt_float(fin.get("rpo_s"))),
    )


_STEP_TYPES = ("step", "probe", "rollback")
# continuously checked probes: only failures are worth a line of their own
_QUIET_PHASES = ("stop_condition", "canary")


def _steps(records: Iterable[Mapping[str, Any]]) -> tuple[StepRow, ...]:
    rows = []
    for r in records:
        rtype = r.get("type")
        if rtype not in _STEP_TYPES or r.get("phase") in _QUIET_PHASES:
            continue
        rows.append(
            StepRow(
                phase=str(r.get("phase") or ("rollback" if rtype == "rollback" else "")),
                name=str(r.get("name") or ""),
                kind=str(r.get("kind") or ""),
                record_type=str(rtype),
                start=c.parse_time(r.get("start")) or c.rec_time(r),
                end=c.parse_time(r.get("end")),
                status=str(r.get("status") or ""),
                attempts=c.opt_int(r.get("attempts")),
                destructive=bool(r.get("destructive")),
                error=str(r.get("error") or ""),
            )
        )
    return tuple(rows)


def _stop_conditions(records: Iterable[Mapping[str, Any]]) -> tuple[StopConditionRow, ...]:
    checks: dict[str, int] = {}
    status: dict[str, str] = {}
    detail: dict[str, str] = {}
    for r in records:
        name = str(r.get("name") or "")
        if r.get("type") == "probe" and r.get("phase") == "stop_condition":
            checks[name] = checks.get(name, 0) + 1
            st = str(r.get("status") or "")
            if st not in ("ok", "dry_run") and status.get(name) != "tripped":
                status[name] = "failed"
                detail[name] = str(r.get("error") or r.get("output") or "")
            status.setdefault(name, "ok")
        elif r.get("type") == "stop_condition":
            checks.setdefault(name, 0)
            status[name] = "tripped"
            detail[name] = str(r.get("detail") or "")
    return tuple(
        StopConditionRow(n, checks[n], status.get(n, "ok"), detail.get(n, "")) for n in checks
    )


def _outputs(records: Iterable[Mapping[str, Any]]) -> tuple[OutputRow, ...]:
    out = []
    for r in records:
        if r.get("type") not in _STEP_TYPES:
            continue
        if r.get("phase") in _QUIET_PHASES and r.get("status") == "ok":
            continue
        text = str(r.get("output") or "").strip()
        if text:
            if len(text) > OUTPUT_LIMIT:
                text = text[:OUTPUT_LIMIT] + " […]"
            out.append(OutputRow(str(r.get("phase") or r.get("type")), str(r.get("name")), text))
    return tuple(out)


def _timeline(records: Sequence[Mapping[str, Any]], started: datetime) -> list[TimelineEntry]:
    out: list[TimelineEntry] = []
    for r in records:
        entry = _journal_entry(r, started)
        if entry is not None:
            out.append(entry)
    return out


def _journal_entry(r: Mapping[str, Any], started: datetime) -> TimelineEntry | None:
    rtype = str(r.get("type"))
    t = c.rec_time(r)
    if rtype in _STEP_TYPES:
        t = c.parse_time(r.get("start")) or t
    if t is None:
        return None
    off = (t - started).total_seconds()
    status = c.opt_str(r.get("status"))
    phase = c.opt_str(r.get("phase"))
    name = str(r.get("name") or "")
    if rtype == "run_started":
        return TimelineEntry(t, off, "started", name or "", None, Msg.of("d_started", **_op(r)))
    if rtype == "run_finished":
        return TimelineEntry(t, off, "finished", "", status, str(r.get("error") or ""))
    if rtype == "phase":
        if status != "failed":
            return None
        return TimelineEntry(t, off, "phase", Msg(f"phase_{phase}"), status, "")
    if rtype in _STEP_TYPES:
        if phase in _QUIET_PHASES and status == "ok":
            return None
        return TimelineEntry(t, off, rtype, name, status, str(r.get("error") or ""), phase)
    if rtype == "mark":
        return TimelineEntry(t, off, "mark", Msg(f"mark_{r.get('mark')}"), None, "")
    if rtype == "approval":
        detail = Msg.of("d_approval", user=str(r.get("user") or ""))
        return TimelineEntry(t, off, "approval", "", None, detail)
    if rtype == "stop_condition":
        return TimelineEntry(t, off, "stop_condition", name, "tripped", str(r.get("detail") or ""))
    if rtype == "event":
        kind = str(r.get("kind") or "")
        return TimelineEntry(
            t, off, "event", c.event_name(kind), None, c.event_detail(kind, r.get("data"))
        )
    return None


def _op(r: Mapping[str, Any]) -> dict[str, str]:
    return {"operator": str(r.get("operator") or "?")}


def _drill_actions(
    report: Report, finished: Mapping[str, Any] | None, base: date
) -> tuple[ActionItem, ...]:
    due = base + timedelta(days=ACTION_DUE_DAYS)
    owner: Msg | str = report.owners.vendor or Msg("owner_vendor")
    out: list[ActionItem] = []
    for o in report.objectives:
        if o.met is False:
            key = "act_rto_missed" if o.name == "rto" else "act_rpo_missed"
            text = Msg.of(key, achieved=Dur(o.achieved_s or 0), target=Dur(o.target_s or 0))
            out.append(ActionItem(text, owner, due, "generated"))
    if finished is not None and finished.get("steady_state_restored") is False:
        out.append(ActionItem(Msg("act_steady_state"), owner, due, "generated"))
    for s in report.steps:
        if s.phase == "steps" and s.status in ("failed", "timeout"):
            out.append(ActionItem(Msg.of("act_step_failed", name=s.name), owner, due, "generated"))
        if s.record_type == "rollback" and s.status == "not_run":
            text = Msg.of("act_rollback_not_run", name=s.name)
            out.append(ActionItem(text, owner, due, "generated"))
    return tuple(out)


def _drill_summary(
    report: Report, finished: Mapping[str, Any] | None, name: str, n_shed: int
) -> tuple[Msg, ...]:
    if report.status == "missed":
        out = [Msg.of("s_drill_missed", name=name, date=report.started)]
    else:
        status = Msg(f"status_{report.status}")
        out = [Msg.of("s_drill_result", name=name, status=status, date=report.started)]
    if report.dry_run:
        out.append(Msg("s_dry_run"))
    for o in report.objectives:
        out.append(c.objective_sentence(o, skip_unmeasured=report.dry_run))
    restored = (finished or {}).get("steady_state_restored")
    if restored is True:
        out.append(Msg("s_steady_restored"))
    elif restored is False:
        out.append(Msg("s_steady_not_restored"))
    out.extend(
        Msg.of("s_stop_tripped", name=s.name)
        for s in report.stop_conditions
        if s.status == "tripped"
    )
    failed = next(
        (s for s in report.steps if s.phase == "steps" and s.status in ("failed", "timeout")), None
    )
    if failed is not None:
        out.append(Msg.of("s_step_failed", name=failed.name, error=failed.error or failed.status))
    elif finished is not None and finished.get("error"):
        out.append(Msg.of("s_error", error=str(finished.get("error"))))
    out.extend(c.common_summary(report, n_shed))
    return tuple(m for m in out if m.key)
