"""The end of a run: the verdict (`run_finished`), the result and the HTML report."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from recoveryd import drill_records as rec
from recoveryd.drills.result import DrillResult
from recoveryd.state import StateStore

if TYPE_CHECKING:
    from recoveryd.drills.runner import DrillRunner

GOVERNOR_EVENTS = ("level_change", "deferred", "paused", "resumed", "shed_action", "rpo_override")


def journal_seal(runner: DrillRunner) -> dict[str, Any]:
    """The journal's last hash and length, kept in the state database apart from the journal,
    so that `drill list --verify` and the report notice records removed from its end or a
    journal rewritten whole."""
    last = runner.journal.last
    if last is None:
        return {}
    return {"journal_head": last["hash"], "journal_records": int(last["seq"]) + 1}


def governor_events(runner: DrillRunner, store: StateStore, since: datetime) -> None:
    """Shedding events that happened during the run, for the report's timeline."""
    try:
        events = store.events(since=since, kinds=GOVERNOR_EVENTS)
    except Exception:  # noqa: BLE001 - the journal must be finished even so
        return
    for event in events:
        runner.journal.write(
            rec.EventRecord(time=event.time, kind=event.kind, data=dict(event.data))
        )


def finish(runner: DrillRunner, rto: float | None, rpo: float | None) -> DrillResult:
    """Judge the objectives, journal `run_finished`, return the result."""
    st = runner.state
    if runner.steady_after is False and st.status == "passed":
        st.status = "failed"
        st.error = "steady state did not hold after the drill"
    met = objectives_met(runner, rto, rpo)
    if met is False and st.status == "passed" and st.error is None:
        st.error = "an objective was missed"
    runner.journal.write(
        rec.RunFinished(
            status=st.status,
            rto_s=rto,
            rpo_s=rpo,
            objectives_met=met,
            steady_state_restored=runner.steady_after,
            error=st.error,
        )
    )
    return DrillResult(
        run_id=runner.run_id,
        status=st.status,
        rto_seconds=rto,
        rpo_seconds=rpo,
        objectives_met=met,
        dry_run=runner.dry_run,
        journal=runner.journal.path,
        error=st.error,
        interrupted=st.status == "interrupted",
        approval_missing=st.approval_missing,
        measures=dict(st.measures),
    )


def run_result(result: DrillResult) -> str:
    """The run's result in the state database: `ok` when it passed and met its objectives,
    `dry_run` for a dry run that went through (nothing was measured or judged), `failed`
    otherwise."""
    if result.status == "passed" and result.dry_run:
        return "dry_run"
    return "ok" if result.status == "passed" and result.objectives_met else "failed"


def objectives_met(runner: DrillRunner, rto: float | None, rpo: float | None) -> bool | None:
    """None for a dry run (nothing was measured, so nothing is judged)."""
    if runner.dry_run:
        return None
    objectives = runner.book.objectives
    met = runner.state.status == "passed" and runner.steady_after is not False
    if objectives.rto is not None:
        met = met and rto is not None and rto <= objectives.rto
    if objectives.rpo is not None:
        met = met and rpo is not None and rpo <= objectives.rpo
    return met


def with_report(runner: DrillRunner, result: DrillResult) -> DrillResult:
    """The result with the path of its report, written by the injected writer (if any)."""
    if runner.report is None:
        return result
    try:
        path = runner.report(runner.state_dir, runner.run_id, tuple(runner.loaded.secrets))
    except Exception:  # noqa: BLE001 - the run is journaled; `recoveryd report` can retry
        return result
    return DrillResult(**{**result.__dict__, "report": path})
