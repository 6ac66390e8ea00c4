"""A round-trip report when no drill ran: backups, verify and restore as the state store saw them.

`make run` backs up, verifies and restores without a playbook. Its report is
still made of recorded data: the runs in the state store become a journal in
the documented format (one step per run; the restore's start and end are the
fault and recovery marks, so RTO is the time the restore took and RPO the age
of the newest backup when it began), written hash-chained to
`state_dir/reports/<ID>/journal.jsonl` and rendered next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoveryd import drill_records as dr
from recoveryd.chain import HashChain
from recoveryd.incidents import current_operator
from recoveryd.state import Run, StateStore, iso
from recoveryd.units import format_size

if TYPE_CHECKING:
    from recoveryd.config import Config

PLAYBOOK_NAME = "backup-restore-round-trip"


def write_session_journal(state_dir: Path, config: Config | None) -> Path | None:
    """Write the round-trip journal of the runs recorded so far; None when there are none."""
    if not (state_dir / "state.db").is_file():
        return None
    store = StateStore(state_dir)
    try:
        runs = [r for r in reversed(store.runs(limit=500)) if r.ended_at is not None]
    finally:
        store.close()
    if not runs:
        return None
    run_id = f"{runs[0].started_at:%Y%m%dT%H%M%SZ}-round-trip"
    path = state_dir / "reports" / run_id / "journal.jsonl"
    path.unlink(missing_ok=True)  # derived from the state store: rebuilt, never appended to
    chain = HashChain(path)
    for record in session_records(run_id, runs, config):
        chain.append(record)
    return path


def session_records(
    run_id: str, runs: Sequence[Run], config: Config | None
) -> list[dict[str, Any]]:
    """The journal records of a list of finished runs, oldest first (a pure function)."""
    sources = sorted({r.source for r in runs if r.source})
    restores = [r for r in runs if r.kind == "restore"]
    restore = restores[-1] if restores else None
    records: list[dict[str, Any]] = [
        {
            "type": "run_started",
            "time": iso(runs[0].started_at),
            "run_id": run_id,
            "playbook": {
                "name": PLAYBOOK_NAME,
                "description": "Backup, integrity check and restore of "
                + (", ".join(sources) or "the configured sources")
                + ", as recorded by the state store; the restore stands in for the loss of "
                "the live database.",
                "path": None,
                "sha256": None,
            },
            "operator": current_operator(),
            "dry_run": False,
            "objectives": _objectives(sources, config),
            "owners": {"government": None, "vendor": None},
            "sources": sources,
        }
    ]
    for run in runs:
        if run is restore:
            records.append(_mark("fault_start", run.started_at, run))
        records.append(_step(run))
        if run is restore and run.result == "ok":
            records.append(_mark("recovered", _end(run), run))
    ok = all(r.result == "ok" for r in runs)
    rto = (_end(restore) - restore.started_at).total_seconds() if restore else None
    rpo = _data_at_risk(runs, restore)
    objectives = records[0]["objectives"]
    met = all(
        achieved is None or target is None or achieved <= target
        for achieved, target in ((rto, objectives["rto_s"]), (rpo, objectives["rpo_s"]))
    )
    records.append(
        {
            "type": "run_finished",
            "time": iso(_end(runs[-1])),
            "status": "passed" if ok and met else "failed",
            "rto_s": rto,
            "rpo_s": rpo,
            "objectives_met": met,
            "error": next((r.error for r in runs if r.error), None),
        }
    )
    return records


def _objectives(sources: Sequence[str], config: Config | None) -> dict[str, float | None]:
    if config is None:
        return {"rto_s": None, "rpo_s": None}
    chosen = [config.sources[s] for s in sources if s in config.sources]
    rpos = [s.rpo for s in chosen if s.rpo is not None]
    rtos = [s.restore_drill.rto for s in chosen if s.restore_drill and s.restore_drill.rto]
    return {"rto_s": min(rtos) if rtos else None, "rpo_s": min(rpos) if rpos else None}


def _mark(mark: str, at: datetime, run: Run) -> dict[str, Any]:
    """The restore stands in for the outage: it begins when the restore starts."""
    rec = dr.MarkRecord(mark=mark, step=_name(run), step_start=run.started_at)
    return {"type": "mark", "time": iso(at), **dr.to_fields(rec)}


def _name(run: Run) -> str:
    return f"{run.kind} {run.source}" if run.source else run.kind


def _step(run: Run) -> dict[str, Any]:
    parts = []
    if run.snapshot_id:
        parts.append(f"snapshot {run.snapshot_id[:12]}")
    if run.bytes_read is not None:
        parts.append(f"{format_size(run.bytes_read)} read")
    if run.bytes_stored is not None:
        parts.append(f"{format_size(run.bytes_stored)} stored")
    return {
        "type": "step",
        "time": iso(_end(run)),
        "phase": "steps",
        "name": _name(run),
        "kind": run.kind,
        "start": iso(run.started_at),
        "end": iso(_end(run)),
        "status": "ok" if run.result == "ok" else "failed",
        "attempts": 1,
        "destructive": False,
        "output": ", ".join(parts),
        "error": run.error,
    }


def _data_at_risk(runs: Sequence[Run], restore: Run | None) -> float | None:
    if restore is None:
        return None
    backups = [
        r for r in runs if r.kind == "backup" and r.result == "ok" and _end(r) <= restore.started_at
    ]
    if not backups:
        return None
    return (restore.started_at - max(_end(b) for b in backups)).total_seconds()


def _end(run: Run) -> datetime:
    return run.ended_at or run.started_at
