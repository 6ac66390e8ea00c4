"""Helpers shared by the drill and incident report builders (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from recoveryd.reports.model import (
    ActionItem,
    BackupRow,
    Dur,
    Msg,
    Objective,
    Report,
    SourceHistory,
    StateSnapshot,
    TimelineEntry,
)
from recoveryd.secrets import Redactor
from recoveryd.state import Run, parse_iso

KNOWN_EVENTS = frozenset(
    {"level_change", "deferred", "paused", "resumed", "shed_action", "rpo_override", "failure"}
    | {"abandoned", "overdue", "overdue_cleared", "catch_up", "daemon_started", "job_unavailable"}
)
LEVELS = frozenset({"normal", "elevated", "critical"})
RUN_KINDS = frozenset({"backup", "verify", "copy", "prune", "restore", "restore_drill", "drill"})
SHED_EVENTS = frozenset({"level_change", "shed_action", "deferred", "paused"})
# the daemon's names for the same things (`daemon_backup` runs, `job_deferred` events)
_EVENT_ALIASES = {"job_deferred": "deferred"}
# keys of event data the report catalogs name in the reader's language
DATA_KEYS = frozenset(
    {"action", "service", "requests_shed", "job", "reason", "step", "measure", "required"}
    | {"command"}
)
_SHED_COUNT_KEYS = ("requests_shed", "shed_requests", "requests_rejected", "rejected_requests")
_LEVEL_KEYS = (("from", "to"), ("previous", "level"), ("old", "new"), ("before", "after"))


@dataclass(frozen=True)
class EventView:
    """An event from the journal or the state store, in one shape."""

    time: datetime
    kind: str
    source: str | None
    data: Mapping[str, Any]
    in_journal: bool


# --- tolerant field access (journals are written by another module, maybe another version)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def rec_time(record: Mapping[str, Any] | None) -> datetime | None:
    return parse_time(record.get("time")) if record is not None else None


def last_time(records: Iterable[Mapping[str, Any]]) -> datetime | None:
    times = [t for r in records for t in (rec_time(r), parse_time(r.get("end"))) if t]
    return max(times) if times else None


# --- redaction of everything recorded


def redact_tree(value: Any, redact: Redactor) -> Any:
    return redact.tree(value)


def redact_state(state: StateSnapshot, redact: Redactor) -> StateSnapshot:
    def run(r: Run) -> Run:
        return replace(
            r, error=redact(r.error) if r.error else r.error, details=redact_tree(r.details, redact)
        )

    def hist(h: SourceHistory) -> SourceHistory:
        return replace(
            h,
            backups=tuple(map(run, h.backups)),
            verifies=tuple(map(run, h.verifies)),
            restore_drills=tuple(map(run, h.restore_drills)),
        )

    return StateSnapshot(
        events=tuple(replace(e, data=redact_tree(e.data, redact)) for e in state.events),
        runs=tuple(map(run, state.runs)),
        sources={k: hist(v) for k, v in state.sources.items()},
        drills=tuple(replace(d, name=redact(d.name)) for d in state.drills),
    )


# --- events


def merged_events(
    journal: Sequence[EventView], state: StateSnapshot, since: datetime, until: datetime
) -> list[EventView]:
    """Events of the journal plus state-store events in [since, until], without duplicates."""
    out = list(journal)
    seen = {_event_key(ev) for ev in journal}
    for e in state.events:
        if since <= e.time <= until:
            ev = EventView(e.time, e.kind, e.source, e.data, False)
            if _event_key(ev) not in seen:
                out.append(ev)
    return sorted(out, key=lambda e: e.time)


def _event_key(e: EventView) -> tuple[str, str, str]:
    return (
        e.kind,
        e.time.strftime("%Y%m%d%H%M%S"),
        json.dumps(e.data, sort_keys=True, default=str),
    )


def event_kind(kind: str) -> str:
    return _EVENT_ALIASES.get(kind, kind)


def run_kind(kind: str) -> str:
    return kind.removeprefix("daemon_")


def event_name(kind: str) -> Msg | str:
    kind = event_kind(kind)
    return Msg(f"ev_{kind}") if kind in KNOWN_EVENTS else kind


def event_detail(kind: str, data: Any, source: str | None = None) -> Msg | str:
    d = mapping(data)
    if kind == "level_change":
        for before, after in _LEVEL_KEYS:
            if before in d and after in d:
                return Msg.of(
                    "d_level_change",
                    before=_level(d[before]),
                    after=_level(d[after]),
                    why=_reasons(d),
                )
    parts: list[Msg | str] = [source] if source else []
    for key in sorted(d):
        value = d[key]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        label: Msg | str = Msg(f"data_{key}") if key in DATA_KEYS else key
        parts.append(Msg.of("d_pair", name=label, value=text))
    return _join(parts)


def _join(parts: Sequence[Msg | str]) -> Msg | str:
    """`a, b, c` in the reader's language."""
    if not parts:
        return ""
    out = parts[-1]
    for part in reversed(parts[:-1]):
        out = Msg.of("d_join", a=part, b=out)
    return out


def _level(value: Any) -> Msg | str:
    return Msg(f"level_{value}") if value in LEVELS else str(value)


def _reasons(d: Mapping[str, Any]) -> str:
    """` (cpu 95.2, memory 93)`: the signals that caused a level change, with their readings."""
    reasons = [str(r) for r in seq(d.get("reasons"))]
    if not reasons:
        return ""
    shown = [f"{r} {d[r]}" if isinstance(d.get(r), int | float) else r for r in reasons]
    return f" ({', '.join(shown)})"


def requests_shed(events: Sequence[EventView]) -> int | None:
    """Sum of recorded shed-request counts; 0 when nothing was shed; None when shedding ran
    but recorded no count."""
    total: int | None = None
    for e in events:
        for key in _SHED_COUNT_KEYS:
            n = opt_int(e.data.get(key))
            if n is not None:
                total = (total or 0) + n
    if total is not None:
        return total
    return None if any(e.kind == "shed_action" for e in events) else 0


def shed_count(events: Sequence[EventView]) -> int:
    return sum(1 for e in events if event_kind(e.kind) in SHED_EVENTS)


def services(sources: Sequence[str], events: Sequence[EventView]) -> tuple[str, ...]:
    names = list(sources)
    for e in events:
        service = e.data.get("service")
        if isinstance(service, str) and service and service not in names:
            names.append(service)
    return tuple(names)


def state_timeline(
    events: Sequence[EventView],
    runs: Sequence[Run],
    started: datetime,
    *,
    all_runs: bool = False,
    until: datetime | None = None,
) -> list[TimelineEntry]:
    """Timeline rows for state-store events not already in the journal, and for runs in the
    window: failures always, drills and restore drills too when `all_runs`."""
    out = [
        TimelineEntry(
            e.time,
            (e.time - started).total_seconds(),
            "event",
            event_name(e.kind),
            None,
            event_detail(e.kind, e.data, e.source),
        )
        for e in events
        if not e.in_journal
    ]
    for r in runs:
        t = r.ended_at or r.started_at
        if t < started or (until is not None and t > until):
            continue
        failed = r.result in ("failed", "aborted")
        base = run_kind(r.kind)
        if not failed and not (all_runs and base in ("drill", "restore_drill")):
            continue
        kind: Msg | str = Msg(f"run_{base}") if base in RUN_KINDS else r.kind
        name = Msg.of("d_run", kind=kind, source=r.source or "-")
        out.append(
            TimelineEntry(t, (t - started).total_seconds(), "run", name, r.result, r.error or "")
        )
    return out


# --- backups


def backup_rows(
    sources: Sequence[str], state: StateSnapshot, ref: datetime
) -> tuple[BackupRow, ...]:
    """Each source's backups as they stood at `ref` (the start of the run or incident)."""
    rows = []
    for name in sources:
        hist = state.sources.get(name) or SourceHistory(name, None)
        snap = _last(hist.backups, ref, ok_only=True)
        snap_t = (snap.ended_at or snap.started_at) if snap else None
        ver = _last(hist.verifies, ref)
        drill = _last(hist.restore_drills, ref)
        rows.append(
            BackupRow(
                source=name,
                rpo_s=hist.rpo_s,
                last_snapshot=snap_t,
                snapshot_id=snap.snapshot_id if snap else None,
                age_s=(ref - snap_t).total_seconds() if snap_t else None,
                last_verify=(ver.ended_at or ver.started_at) if ver else None,
                last_verify_result=ver.result if ver else None,
                last_restore_drill=(drill.ended_at or drill.started_at) if drill else None,
                last_restore_drill_rto_s=_rto(drill) if drill else None,
            )
        )
    return tuple(rows)


def _last(runs: Sequence[Run], ref: datetime, *, ok_only: bool = False) -> Run | None:
    for r in sorted(runs, key=lambda r: r.ended_at or r.started_at, reverse=True):
        if (r.ended_at or r.started_at) > ref or r.result == "running":
            continue
        if ok_only and r.result != "ok":
            continue
        return r
    return None


def _rto(run: Run) -> float | None:
    for key in ("rto_s", "rto_seconds", "rto"):
        value = opt_float(run.details.get(key))
        if value is not None:
            return value
    if run.ended_at is not None:
        return (run.ended_at - run.started_at).total_seconds()
    return None


# --- sentences and action items shared by both kinds of report


def objective_sentence(o: Objective, *, skip_unmeasured: bool = False) -> Msg:
    """The plain-language sentence for one objective; key "" when there is nothing to say."""
    if o.achieved_s is None:
        if skip_unmeasured or o.target_s is None:
            return Msg("")  # nothing promised, nothing measured: nothing to say
        return Msg(f"s_{o.name}_unmeasured")
    achieved = Dur(o.achieved_s)
    if o.target_s is None:
        return Msg.of(f"s_{o.name}_measured", achieved=achieved)
    key = f"s_{o.name}_met" if o.met else f"s_{o.name}_missed"
    return Msg.of(key, achieved=achieved, target=Dur(o.target_s))


def overdue_sources(report: Report) -> list[str]:
    return [b.source for b in report.backups if b.overdue]


def common_summary(report: Report, n_shed: int) -> list[Msg]:
    out = []
    if n_shed:
        out.append(Msg.of("s_shedding", count=n_shed))
    overdue = overdue_sources(report)
    if overdue:
        out.append(Msg.of("s_backups_overdue", sources=", ".join(overdue)))
    if report.tampered:
        out.append(Msg("s_tampered"))
    return out


def common_actions(report: Report, base: date) -> tuple[ActionItem, ...]:
    out = []
    overdue = overdue_sources(report)
    if overdue:
        owner: Msg | str = report.owners.vendor or Msg("owner_vendor")
        text = Msg.of("act_backup_overdue", sources=", ".join(overdue))
        out.append(ActionItem(text, owner, base + timedelta(days=14), "generated"))
    if report.tampered:
        gov: Msg | str = report.owners.government or Msg("owner_government")
        out.append(ActionItem(Msg("act_tampered"), gov, base + timedelta(days=7), "generated"))
    return tuple(out)
