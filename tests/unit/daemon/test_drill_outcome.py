"""How a drill's result becomes a daemon job outcome."""

from __future__ import annotations

from pathlib import Path

from recoveryd.daemon.ops import drill_outcome
from recoveryd.drills.result import DrillResult


def _result(status: str) -> DrillResult:
    return DrillResult(
        run_id="r",
        status=status,  # type: ignore[arg-type]
        rto_seconds=None,
        rpo_seconds=None,
        objectives_met=False,
        journal=Path("/nonexistent"),
        interrupted=status == "interrupted",
    )


def test_an_interrupted_drill_is_an_aborted_job_not_a_failed_one() -> None:
    """A drill the daemon's stop interrupted, like one a stop condition aborted, is recorded
    as an aborted job, with the drill's own status kept in the details."""
    for status in ("interrupted", "aborted"):
        outcome = drill_outcome(_result(status))
        assert outcome.result == "aborted"
        assert outcome.details["status"] == status
        assert status in str(outcome.error)
    assert drill_outcome(_result("failed")).result == "failed"
