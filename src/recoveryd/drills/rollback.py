"""Guards (`only_if`) and the rollback phase.

`only_if` is one probe evaluated just before its step or rollback would run;
when it does not hold, the step is skipped and journaled `skipped` with a
`guard` field: the probe's name, whether it held, the value it saw and why not.

Rollbacks run newest first, then the automatic undo of faults (always):
- a step that completed has its rollback run, through its `only_if` when it has one;
- a step cut short (stopped by an abort or its timeout) is *possibly done*: its
  rollback runs only when it has an `only_if` and the probe holds; without one it is
  not run (undoing what may not have happened can do harm), and a `rollback` record
  with status `not_run` says so, which the report turns into an action item.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recoveryd.drill_records import GuardRecord, PhaseRecord
from recoveryd.drills.models import Step
from recoveryd.drills.steps.base import Outcome, StepContext

if TYPE_CHECKING:
    from recoveryd.drills.runner import DrillRunner, _Done

CUT_SHORT = ("aborted", "timeout")


@dataclass(frozen=True)
class Guard:
    """What an `only_if` probe saw."""

    name: str
    held: bool
    value: str
    detail: str | None

    def to_record(self) -> GuardRecord:
        """The `guard` field of the step or rollback record."""
        return GuardRecord(name=self.name, held=self.held, value=self.value, detail=self.detail)

    def skipped(self) -> Outcome:
        why = f" ({self.detail})" if self.detail else ""
        return Outcome(
            "skipped", f'only_if "{self.name}" did not hold; value seen: {self.value!r}{why}'
        )


def check_guard(runner: DrillRunner, probe: Step, ctx: StepContext) -> Guard:
    """Run the `only_if` probe once (its retries and `wait` polling apply); not journaled
    on its own: the step or rollback record carries the result."""
    outcome = runner.attempt(probe, ctx, "probe")
    value = outcome.output.strip()
    return Guard(probe.name, outcome.ok, value, None if outcome.ok else outcome.error)


def run_rollbacks(runner: DrillRunner, done: list[_Done], roll: bool) -> None:
    """Rollbacks (when `roll`) and fault undos, newest first; journaled in phase `rollback`."""
    work = [d for d in done if (roll and d.step.rollback) or d.outcome.undo]
    if not work:
        return
    runner.journal.write(PhaseRecord(phase="rollback", status="started"))
    ctx = runner.context(threading.Event())  # rollbacks are not cancelled by the abort
    ok = True
    for item in reversed(work):
        if item.outcome.undo is not None:
            ok = _undo(runner, item, item.outcome.undo) and ok
        if roll and item.step.rollback is not None:
            ok = _rollback(runner, item, item.step.rollback, ctx) and ok
    runner.journal.write(PhaseRecord(phase="rollback", status="passed" if ok else "failed"))


def _undo(runner: DrillRunner, item: _Done, undo: Callable[[], Outcome]) -> bool:
    start = runner.clock()
    try:
        result = undo()
    except Exception as exc:  # noqa: BLE001 - the other undos and rollbacks still run
        result = Outcome("failed", "", f"{type(exc).__name__}: {exc}")
    undo_step = item.step.model_copy(update={"name": f"undo: {item.step.name}"})
    runner.record_step("rollback", "rollback", undo_step, start, result, 1)
    return result.ok


def _rollback(runner: DrillRunner, item: _Done, rollback: Step, ctx: StepContext) -> bool:
    start = runner.clock()
    if item.cut_short and rollback.only_if is None:
        outcome = Outcome(
            "not_run",
            "",
            f'step "{item.step.name}" was cut short ({item.outcome.status}) and is possibly '
            "done; its rollback has no only_if to tell whether it is needed, so it was not "
            "run: check the system by hand",
        )
        runner.record_step("rollback", "rollback", rollback, start, outcome, 0)
        return False
    guard = None
    if rollback.only_if is not None:
        guard = check_guard(runner, rollback.only_if, ctx)
        if not guard.held:
            runner.record_step("rollback", "rollback", rollback, start, guard.skipped(), 0, guard)
            return True
    return runner.attempts(rollback, ctx, "rollback", "rollback", guard=guard).ok
