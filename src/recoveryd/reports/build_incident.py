"""The report model of a real incident: its record plus what the daemon recorded meanwhile.

Records (see `recoveryd.incidents`): `opened` {id, title, severity, operator,
owners}, `note` {text}, `action` {owner, due, text}, `closed` {summary}, each
with `time` and `operator`. Events and failed runs, drills and restore drills
that the state store holds between opening and closing (or `now` while open)
join the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

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
    record: RecordFile, records: Sequence[Mapping[str, Any]], state: StateSnapshot, now: datetime
) -> Report:
    opened = records[0]
    closed = next((r for r in records if r.get("type") == "closed"), None)
    opened_at = c.rec_time(opened) or now
    began = c.parse_time(opened.get("started_at"))  # when the outage began, when given
    recovered = c.parse_time(closed.get("recovered_at")) if closed else None
    started = min(began or opened_at, opened_at)
    ended = (recovered or c.rec_time(closed)) if closed else None
    window_end = max(ended or now, c.rec_time(closed) or now) if closed else now
    title = str(opened.get("title") or record.id)
    severity = str(opened.get("severity") or "")
    operator = str(opened.get("operator") or "")
    owners_map = c.mapping(opened.get("owners"))
    owners = Owners(c.opt_str(owners_map.get("government")), c.opt_str(owners_map.get("vendor")))

    named = c.opt_str(opened.get("source"))
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
    service = c.opt_str(opened.get("service"))
    affected = ((service,) if service else ()) + failed_sources
    duration = ((ended or now) - started).total_seconds()
    report = Report(
        kind="incident",
        id=record.id,
        title=title,
        description="",
        status="closed" if closed else "open",
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


def _own_rows(records: Sequence[Mapping[str, Any]], started: datetime) -> list[TimelineEntry]:
    out = []
    for r in records:
        t = c.rec_time(r)
        rtype = str(r.get("type"))
        if t is None or rtype not in ("opened", "note", "action", "closed"):
            continue
        off = (t - started).total_seconds()
        who = str(r.get("operator") or "")
        if rtype == "opened":
            text = str(r.get("title") or "")
        elif rtype == "note":
            text = str(r.get("text") or "")
        elif rtype == "action":
            text = f"{r.get('text') or ''} ({r.get('owner') or ''}, {r.get('due') or ''})"
        else:
            text = str(r.get("summary") or "")
        out.append(TimelineEntry(t, off, rtype, who, None, text))
    return out


def _recorded_actions(records: Sequence[Mapping[str, Any]]) -> tuple[ActionItem, ...]:
    out = []
    for r in records:
        if r.get("type") != "action":
            continue
        due = None
        if isinstance(r.get("due"), str):
            try:
                due = date.fromisoformat(str(r["due"]))
            except ValueError:
                due = None
        out.append(
            ActionItem(
                text=str(r.get("text") or ""),
                owner=str(r.get("owner") or ""),
                due=due,
                origin="recorded",
                raised=c.rec_time(r),
                raised_by=c.opt_str(r.get("operator")),
            )
        )
    return tuple(out)


def _summary(
    report: Report,
    entries: tuple[Mapping[str, Any], Mapping[str, Any] | None],
    n_rows: int,
    n_shed: int,
) -> tuple[Msg, ...]:
    """When the incident was opened and closed (the times the commands were typed); the
    outage itself is in the objectives."""
    opened, closed = entries
    opened_at = c.rec_time(opened) or report.started
    common: dict[str, Any] = {
        "title": report.title,
        "severity": report.severity or "-",
        "operator": report.operator or "?",
        "date": opened_at,
    }
    out: list[Msg] = []
    if closed is not None:
        open_for = ((c.rec_time(closed) or opened_at) - opened_at).total_seconds()
        out.append(Msg.of("s_incident_closed", duration=Dur(open_for), **common))
        if closed.get("summary"):
            out.append(Msg.of("s_incident_summary", summary=str(closed["summary"])))
    else:
        out.append(Msg.of("s_incident_open", **common))
    if n_rows:
        out.append(Msg.of("s_incident_events", count=n_rows))
    out.extend(c.objective_sentence(o) for o in report.objectives if o.achieved_s is not None)
    out.extend(c.common_summary(report, n_shed))
    return tuple(out)
