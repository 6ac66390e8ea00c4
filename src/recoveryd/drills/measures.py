"""RTO from the marks, RPO from the canary and `measure:` counts, journaled as the run
measures them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from recoveryd import drill_records as rec
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
        runner.journal.write(
            rec.EventRecord(
                kind="measure_missing", data={"step": step.name, "measure": step.measure}
            )
        )
        return
    runner.state.measures[step.measure] = int(found.group(0))


def take_mark(runner: DrillRunner, step: Step, started: datetime) -> None:
    """The mark a completed step carries, with when that step started (see
    `drill_records.outage_window`)."""
    if step.marks is None:
        return
    mark = rec.MarkRecord(
        time=rec.journal_time(runner.clock()),
        mark=step.marks,
        step=step.name,
        step_start=rec.journal_time(started),
    )
    runner.state.marks[step.marks] = mark.time or started
    runner.state.mark_records.append(mark)
    runner.journal.write(mark)


def start_canary(runner: DrillRunner) -> CanaryWriter | None:
    """Prepare the canary table and start writing; a canary that cannot is journaled."""
    if runner.book.canary is None:
        return None
    canary = CanaryWriter(runner.book.canary, runner.run_id, runner.clock)
    start = runner.clock()
    try:
        canary.prepare()
    except Exception as exc:  # noqa: BLE001 - psycopg errors vary; recorded, the drill goes on
        error = f"cannot prepare the canary table: {type(exc).__name__}: {exc}"
        _canary_probe(runner, start, "", error)
        return None
    if not canary.start():
        error = "the canary could not write to the primary before the steps"
        _canary_probe(runner, start, "", error)
    return canary


def _canary_probe(runner: DrillRunner, start: datetime, output: str, error: str | None) -> None:
    runner.journal.write(
        rec.StepRecord(
            type="probe", phase="canary", name="canary", kind="sql", start=start,
            end=runner.clock(), status="ok" if error is None else "failed", attempts=1,
            output=output, error=error,
        )
    )  # fmt: skip


def rto(runner: DrillRunner) -> float | None:
    """The measured outage (`drill_records.outage_seconds`)."""
    return rec.outage_seconds(runner.state.mark_records)


def rpo(runner: DrillRunner, canary: CanaryWriter | None) -> float | None:
    """The span of acknowledged canary writes made before the outage began that did not
    survive: 0 when every one of them is on the new primary."""
    fault_at = rec.outage_window(runner.state.mark_records)[0]
    if canary is None or fault_at is None:
        return None
    start = runner.clock()
    error = None
    newest = None
    acked = canary.newest_acknowledged(before=fault_at)
    try:
        newest = canary.newest_surviving(before=fault_at)
    except Exception as exc:  # noqa: BLE001 - recorded in the journal
        error = f"cannot read the canary on the new primary: {type(exc).__name__}: {exc}"
    value = rpo_seconds(acked, newest)
    text = (
        f"{canary.written} rows written, {canary.failed} writes failed; newest row "
        f"acknowledged before the fault written at {iso(acked) if acked else 'none'}, "
        f"newest surviving at {iso(newest) if newest else 'none'}; RPO {value}"
    )
    if error is None and newest is None:
        error = "no canary row written before the fault survived"
    _canary_probe(runner, start, text, error)
    return value
