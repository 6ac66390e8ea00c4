"""RTO from the marks, RPO from the canary and `measure:` counts, journaled as the run
measures them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from recoveryd.drills.canary import CanaryWriter, rpo_seconds
from recoveryd.state import iso

if TYPE_CHECKING:
    from recoveryd.drills.models import Step
    from recoveryd.drills.runner import DrillRunner
    from recoveryd.drills.steps.base import Outcome

_FIRST_NUMBER = re.compile(r"\d+")


def keep_measure(runner: DrillRunner, step: Step, outcome: Outcome) -> None:
    """Keep the count a `measure:` step printed (its first whole number)."""
    if step.measure is None:
        return
    found = _FIRST_NUMBER.search(outcome.output)
    if found is None:
        runner.journal.record(
            "event", kind="measure_missing", data={"step": step.name, "measure": step.measure}
        )
        return
    runner.state.measures[step.measure] = int(found.group(0))


def start_canary(runner: DrillRunner) -> CanaryWriter | None:
    """Prepare the canary table and start writing; a canary that cannot is journaled."""
    if runner.book.canary is None:
        return None
    canary = CanaryWriter(runner.book.canary, runner.run_id, runner.clock)
    start = runner.clock()
    try:
        canary.prepare()
    except Exception as exc:  # noqa: BLE001 - psycopg errors vary; recorded, the drill goes on
        _canary_failed(
            runner, start, f"cannot prepare the canary table: {type(exc).__name__}: {exc}"
        )
        return None
    if not canary.start():
        _canary_failed(runner, start, "the canary could not write to the primary before the steps")
    return canary


def _canary_failed(runner: DrillRunner, start: datetime, error: str) -> None:
    runner.journal.record(
        "probe", phase="canary", name="canary", kind="sql", start=iso(start),
        end=iso(runner.clock()), status="failed", attempts=1, destructive=False,
        output="", error=error,
    )  # fmt: skip


def rto(runner: DrillRunner) -> float | None:
    marks = runner.state.marks
    if "fault" in marks and "recovered" in marks:
        return (marks["recovered"] - marks["fault"]).total_seconds()
    return None


def rpo(runner: DrillRunner, canary: CanaryWriter | None) -> float | None:
    marks = runner.state.marks
    if canary is None or "fault" not in marks:
        return None
    start = runner.clock()
    error = None
    newest = None
    try:
        newest = canary.newest_surviving(before=marks["fault"])
    except Exception as exc:  # noqa: BLE001 - recorded in the journal
        error = f"cannot read the canary on the new primary: {type(exc).__name__}: {exc}"
    value = rpo_seconds(marks["fault"], newest)
    text = (
        f"{canary.written} rows written, {canary.failed} writes failed; newest surviving "
        f"row written at {iso(newest) if newest else 'none'}; RPO {value}"
    )
    runner.journal.record(
        "probe", phase="canary", name="canary", kind="sql", start=iso(start),
        end=iso(runner.clock()), status="ok" if error is None and newest else "failed",
        attempts=1, destructive=False, output=text, error=error,
    )  # fmt: skip
    return value
