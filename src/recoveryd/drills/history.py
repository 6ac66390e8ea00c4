"""Past drill runs, read back from their journals (`recoveryd drill list`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recoveryd import drill_records as records
from recoveryd.chain import HashChain
from recoveryd.drills.journal import check_against_recorded, iter_runs, journal_path
from recoveryd.state import StateStore, iso


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    playbook: str
    started: str | None
    # passed | failed | aborted (a stop condition) | interrupted (a signal) | running (no
    # run_finished record yet)
    status: str
    rto_seconds: float | None
    rpo_seconds: float | None
    rto_objective: float | None
    rpo_objective: float | None
    objectives_met: bool | None
    dry_run: bool
    journal: Path
    intact: bool | None = None  # with verify: the hash chain holds
    problem: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "started": self.started,
            "status": self.status,
            "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds,
            "objectives": {"rto_s": self.rto_objective, "rpo_s": self.rpo_objective},
            "objectives_met": self.objectives_met,
            "dry_run": self.dry_run,
            "journal": str(self.journal),
            "intact": self.intact,
            "problem": self.problem,
        }


def list_runs(state_dir: Path, *, verify: bool = False) -> list[RunSummary]:
    """Every run under `state_dir/drills`, oldest first; with `verify`, each chain is checked,
    and a run the state database records whose journal is gone is listed as not intact."""
    out = []
    recorded = _recorded_runs(state_dir) if verify else {}
    found = set()
    for path in iter_runs(state_dir):
        found.add(path.parent.name)
        chain = HashChain(path)
        typed = records.read_journal(path)
        started = records.first(typed, records.RunStarted) or records.RunStarted()
        finished = records.first(typed, records.RunFinished) or records.RunFinished()
        status = None
        if verify:
            status = chain.verify()
            status = check_against_recorded(status, recorded.get(path.parent.name, {}))
        out.append(
            RunSummary(
                run_id=started.run_id or path.parent.name,
                playbook=started.playbook.name,
                started=iso(started.time) if started.time else None,
                status=finished.status or "running",
                rto_seconds=finished.rto_s,
                rpo_seconds=finished.rpo_s,
                rto_objective=started.objectives.rto_s,
                rpo_objective=started.objectives.rpo_s,
                objectives_met=finished.objectives_met,
                dry_run=started.dry_run,
                journal=path,
                intact=None if status is None else status.ok,
                problem=None if status is None else status.problem,
            )
        )
    out.extend(
        _missing(state_dir, run_id, details)
        for run_id, details in recorded.items()
        if run_id not in found
    )
    return sorted(out, key=lambda r: r.run_id)


def _missing(state_dir: Path, run_id: str, details: Mapping[str, Any]) -> RunSummary:
    """A run the state database records but whose journal (or whole directory) is gone."""
    path = journal_path(state_dir, run_id)
    gone = "directory" if not path.parent.exists() else "journal"
    return RunSummary(
        run_id=run_id,
        playbook="",
        started=None,
        status=str(details.get("status", "running")),
        rto_seconds=_num(details.get("rto_seconds")),
        rpo_seconds=_num(details.get("rpo_seconds")),
        rto_objective=None,
        rpo_objective=None,
        objectives_met=_bool(details.get("objectives_met")),
        dry_run=bool(details.get("dry_run", False)),
        journal=path,
        intact=False,
        problem=f"the run's {gone} was deleted, but the state database records the run",
    )


def _recorded_runs(state_dir: Path) -> dict[str, Mapping[str, Any]]:
    """Run id -> the details the state database kept of each finished drill run."""
    if not (state_dir / "state.db").is_file():
        return {}
    store = StateStore(state_dir)
    try:
        found: dict[str, Mapping[str, Any]] = {}
        for run in store.runs(limit=1_000_000):
            run_id = run.details.get("run_id")
            if isinstance(run_id, str):
                found.setdefault(run_id, run.details)
        return found
    finally:
        store.close()


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
