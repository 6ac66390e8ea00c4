"""Run or describe a step through its kind (`registry.KINDS`)."""

from __future__ import annotations

from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.registry import KINDS, Step


def execute(step: Step, ctx: StepContext, timeout: float | None = None) -> Outcome:
    """Run one attempt of a step (no retries, no journal); `timeout` None: the kind's default."""
    return KINDS[step.kind].run(step, ctx, timeout)


def describe(step: Step) -> str:
    """What the step would do, variables resolved (for --dry-run and the journal)."""
    return KINDS[step.kind].describe(step)
