"""The report model of a real incident: its record plus what the daemon recorded meanwhile.

The records are the typed models of `recoveryd.incident_records`: `opened`
{id, title, severity, owners, started_at, service, source}, `note` {text},
`action` {owner, due, text}, `closed` {summary, recovered_at}, each with `time`
and `operator`. Events and failed runs, drills and restore drills that the
state store holds between opening and closing (or `now` while open) join the
timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from recoveryd import incident_records as ir
from recoveryd.reports import _common as c
from recoveryd.reports.model import (
    ActionItem,
    BackupRow,
    Dur,
    Impact,
    Integrity,
    Msg,
    Objective,
    Owners,
    Report,
    StateSnapshot,
    TimelineEntry,
)

if TYPE_CHECKING:
    from recoveryd.reports.build import RecordFile


def build_incident(
    record: RecordFile, records: Sequence[ir.IncidentRecord], state: StateSnapshot, now: datetime
) -> Report:
    """The report of the incident whose typed records (first `opened`) are `records`."""
    opened = ir.opened_of(records) or ir.Opened()
    closed = ir.closed_of(records)
    opened_at = opened.time or now
    began = opened.started_at  # when the outage began, when given
    recovered = closed.recovered_at if closed is not None else None
    started = min(began or opened_at, opened_at)
    ended: datetime | None = None
    window_end = now
    if closed is not None:
        ended = recovered or closed.time
        window_end = max(ended or now, closed.time or now)
    title = opened.title or record.id
    severity = opened.severity
    operator = opened.operator
    owners = Owners(opened.owners.government or None, opened.owners.vendor or None)

    named = opened.source or None
    sources = (named,) if named else tuple(sorted(state.sources))
    backups = c.backup_rows(sources, state, began or started)
    events = c.merged_events((), state, started, window_end)
    state_rows = c.state_timeline(events, state.runs, started, all_runs=True, until=window_end)
    state_rows += [
        TimelineEntry(
            d.started,
            (d.started - started).total_seconds(),
            "drill",
            d.name,
            d.status,
            Msg.of("d_drill", run_id=d.run_id),
        )
        for d in state.drills
        if started <= d.started <= window_end
    ]
    failed_sources = tuple(
        sorted(
            {
                r.source
                for r in state.runs
                if r.source and r.result in ("failed", "aborted") and started <= r.started_at
                if r.started_at <= window_end
            }
        )
    )
    rto = (recovered - began).total_seconds() if began and recovered else None
    rpo = _rpo(backups, named)
    service = opened.service or None
    affected = ((service,) if service else ()) + failed_sources
    duration = ((ended or now) - started).total_seconds()
    report = Report(
        kind="incident",
        id=record.id,
        title=title,
        description="",
        status="closed" if closed is not None else "open",
        started=started,
        ended=ended,
        generated=now,
        operator=operator,
        severity=severity or None,
        dry_run=False,
        complete=True,
        objectives=(Objective("rto", None, rto), rpo),
        summary=(),
        impact=Impact(
            duration_s=duration,
            outage_s=rto,
            services=c.services(tuple(dict.fromkeys(affected)), events),
            requests_shed=c.requests_shed(events),
            data_at_risk_s=rpo.achieved_s,
            fault_recorded=began is not None,
            outage_start=began,
        ),
        timeline=tuple(sorted(_own_rows(records, started) + state_rows, key=lambda e: e.time)),
        marks=(),
        steps=(),
        stop_conditions=(),
        backups=backups,
        owners=owners,
        actions=_recorded_actions(records),
        outputs=(),
        integrity=Integrity(
            chain_ok=record.chain.ok,
            records=record.chain.records,
            head=record.chain.head,
            problem=record.chain.problem,
            record_path=record.path,
            playbook_path=None,
            playbook_sha256=None,
        ),
    )
    base = (ended or started).date()
    summary = _summary(report, (opened, closed), len(state_rows), c.shed_count(events))
    return replace(report, summary=summary, actions=report.actions + c.common_actions(report, base))


def _rpo(backups: Sequence[BackupRow], source: str | None) -> Objective:
    """The age of the named source's last snapshot when the outage began, against its RPO;
    not measured when no source was named."""
    row = next((b for b in backups if b.source == source), None) if source else None
    if row is None:
        return Objective("rpo", None, None)
    return Objective("rpo", row.rpo_s, row.age_s)


def _own_rows(records: Sequence[ir.IncidentRecord], started: datetime) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            r.time, (r.time - started).total_seconds(), r.type, r.operator, None, _text(r)
        )
        for r in records
        if r.time is not None
    ]


def _text(r: ir.IncidentRecord) -> str:
    """What the timeline shows of one record."""
    if isinstance(r, ir.Opened):
        return r.title
    if isinstance(r, ir.Note):
        return r.text
    if isinstance(r, ir.Action):
        return f"{r.text} ({r.owner}, {r.due.isoformat() if r.due else ''})"
    return r.summary


def _recorded_actions(records: Sequence[ir.IncidentRecord]) -> tuple[ActionItem, ...]:
    return tuple(
        ActionItem(
            text=r.text,
            owner=r.owner,
            due=r.due,
            origin="recorded",
            raised=r.time,
            raised_by=r.operator or None,
        )
        for r in ir.actions_of(records)
    )


def _summary(
    report: Report,
    entries: tuple[ir.Opened, ir.Closed | None],
    n_rows: int,
    n_shed: int,
) -> tuple[Msg, ...]:
    """When the incident was opened and closed (the times the commands were typed); the
    outage itself is in the objectives."""
    opened, closed = entries
    opened_at = opened.time or report.started
    common: dict[str, Any] = {
        "title": report.title,
        "severity": report.severity or "-",
        "operator": report.operator or "?",
        "date": opened_at,
    }
    out: list[Msg] = []
    if closed is not None:
        open_for = ((closed.time or opened_at) - opened_at).total_seconds()
        out.append(Msg.of("s_incident_closed", duration=Dur(open_for), **common))
        if closed.summary:
            out.append(Msg.of("s_incident_summary", summary=closed.summary))
    else:
        out.append(Msg.of("s_incident_open", **common))
    if n_rows:
        out.append(Msg.of("s_incident_events", count=n_rows))
    out.extend(c.objective_sentence(o) for o in report.objectives if o.achieved_s is not None)
    out.extend(c.common_summary(report, n_shed))
    return tuple(out)
