"""Reading what a report is built from: the record file and the state store around it.

The only part of `recoveryd.reports` that touches the disk for input. A drill
run's journal is `state_dir/drills/<RUN_ID>/journal.jsonl`; an incident's
record is `state_dir/incidents/<ID>.jsonl` (both hash-chained, see
`recoveryd.chain`). The state store is read, never created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from recoveryd import drill_records as dr
from recoveryd import incident_records as ir
from recoveryd.chain import ChainStatus, HashChain
from recoveryd.errors import ExitCode, RecoverydError
from recoveryd.reports.build import RecordFile
from recoveryd.reports.model import DrillRun, SourceHistory, StateSnapshot
from recoveryd.state import Run, StateStore, parse_iso

HISTORY = 200  # runs per source and kind read for the backup table


class ReportError(RecoverydError):
    """A report cannot be produced: unknown run or incident, unreadable record."""


class UnknownRunError(ReportError):
    """No drill run or incident with that id: a usage mistake (exit 2)."""

    exit_code = ExitCode.USAGE


def _records(path: Path) -> tuple[dict[str, Any], ...]:
    """Every parseable record in file order; bytes that are not UTF-8 (an edited record
    file) are replaced, not fatal: the chain's `verify` reports the edit."""
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return tuple(out)


def drill_journal_path(state_dir: Path, run_id: str) -> Path:
    return state_dir / "drills" / run_id / "journal.jsonl"


def incident_path(state_dir: Path, incident_id: str) -> Path:
    return state_dir / "incidents" / f"{incident_id}.jsonl"


def find_record(state_dir: Path, report_id: str) -> Path:
    """The journal of drill run `report_id` or the record of incident `report_id`."""
    if not report_id or "/" in report_id or report_id.startswith("."):
        raise UnknownRunError(f'report: "{report_id}" is not a drill run id or an incident id')
    for path in (drill_journal_path(state_dir, report_id), incident_path(state_dir, report_id)):
        if path.is_file():
            return path
    raise UnknownRunError(
        f'report: no drill run or incident "{report_id}" in {state_dir}; '
        "list them with `recoveryd drill list` or check the state_dir of the configuration"
    )


def read_record(path: Path, report_id: str, *, shown_as: str | None = None) -> RecordFile:
    """The records and chain status of `path`; `shown_as` is the path the report prints
    (relative to the state directory, so reports do not depend on where it is mounted)."""
    chain = HashChain(path)
    try:
        records = _records(path)
        status = chain.verify()
    except OSError as exc:
        raise ReportError(
            f"report: cannot read {path}: {exc.strerror}; check its permissions"
        ) from exc
    if not records:
        raise ReportError(f"report: {path} holds no records; the run did not start")
    return RecordFile(report_id, shown_as or str(path), records, status)


def check_seal(record: RecordFile, state_dir: Path) -> RecordFile:
    """`record`, marked altered when its chain verifies but disagrees with the head and
    length the state database kept for the run when it ended (`journal_head`,
    `journal_records`): records were removed from its end, or it was rewritten whole."""
    if not record.chain.ok or not (state_dir / "state.db").is_file():
        return record
    store = StateStore(state_dir)
    try:
        sealed = [
            r.details
            for r in store.runs(limit=1_000_000)
            if r.details.get("run_id") == record.id and "journal_head" in r.details
        ]
    finally:
        store.close()
    if not sealed:
        return record
    head, count = sealed[0].get("journal_head"), sealed[0].get("journal_records")
    chain = record.chain
    if chain.head == head and chain.records == count:
        return record
    problem = (
        f"the journal holds {chain.records} records, but {count} were recorded in the state "
        "database when the run ended, with another last hash: records were removed or the "
        "journal was rewritten"
    )
    altered = ChainStatus(False, chain.records, chain.head, problem)
    return RecordFile(record.id, record.path, record.records, altered)


def record_window(record: RecordFile, now: datetime) -> tuple[datetime, datetime]:
    """From the first record's time to the last one's (or `now` for an open incident)."""
    if record.records and isinstance(ir.parse(record.records[0]), ir.Opened):
        incident = ir.parse_all(record.records)
        times = ir.times(incident)
        is_open = ir.closed_of(incident) is None
    else:
        times, is_open = _journal_times(record.records), False
    if not times:
        return now, now
    return min(times), (now if is_open else max(times))


def _journal_times(records: Sequence[Mapping[str, Any]]) -> list[datetime]:
    """Every time a drill journal's records hold (when written, when a step ended)."""
    times = []
    for r in records:
        for key in ("time", "end"):
            value = r.get(key)
            if isinstance(value, str):
                try:
                    times.append(parse_iso(value))
                except ValueError:
                    continue
    return times


def load_state(
    state_dir: Path,
    since: datetime,
    until: datetime,
    *,
    sources: Sequence[str] | None,
    rpos: Mapping[str, float | None],
) -> StateSnapshot:
    """Events and runs in [since, until] and the history of `sources` (all sources with runs
    when None). An absent state database gives an empty snapshot."""
    if not (state_dir / "state.db").is_file():
        return StateSnapshot(
            sources={n: SourceHistory(n, rpos.get(n)) for n in sources or ()},
            drills=drill_runs(state_dir, since, until),
        )
    store = StateStore(state_dir)
    try:
        events = tuple(store.events(since=since, until=until))
        recent = store.runs(limit=5000)
        runs = tuple(r for r in recent if since <= (r.ended_at or r.started_at) <= until)
        names = (
            list(sources) if sources is not None else sorted({r.source for r in recent if r.source})
        )
        # `verify` of a whole repository records no source: it covers every source in it
        repo_verifies = tuple(
            r
            for k in ("verify", "daemon_verify")
            for r in store.runs(kind=k, limit=HISTORY)
            if r.source is None
        )
        histories = {
            name: SourceHistory(
                name,
                rpos.get(name),
                backups=_runs(store, "backup", name),
                verifies=_runs(store, "verify", name) + repo_verifies,
                restore_drills=_runs(store, "restore_drill", name),
            )
            for name in names
        }
    finally:
        store.close()
    return StateSnapshot(
        events=events, runs=runs, sources=histories, drills=drill_runs(state_dir, since, until)
    )


def _runs(store: StateStore, kind: str, source: str) -> tuple[Run, ...]:
    """Runs of `kind` for `source`, whether from the CLI (`backup`) or the daemon
    (`daemon_backup`)."""
    return tuple(
        r
        for k in (kind, f"daemon_{kind}")
        for r in store.runs(kind=k, source=source, limit=HISTORY)
    )


def drill_runs(state_dir: Path, since: datetime, until: datetime) -> tuple[DrillRun, ...]:
    """Drill runs whose journals start within [since, until] (oldest first)."""
    found = []
    for path in (state_dir / "drills").glob("*/journal.jsonl"):
        records = dr.parse_all(_records(path))
        started = records[0] if records else None
        if not isinstance(started, dr.RunStarted) or started.time is None:
            continue
        if not since <= started.time <= until:
            continue
        finished = dr.first(records, dr.RunFinished)
        found.append(
            DrillRun(
                run_id=path.parent.name,
                name=started.playbook.name or path.parent.name,
                started=started.time,
                ended=finished.time if finished else None,
                status=(finished.status or "failed") if finished else "running",
            )
        )
    return tuple(sorted(found, key=lambda d: d.started))
