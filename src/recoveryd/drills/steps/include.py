"""The `include` kind: the steps of another playbook, inlined by the loader (the step's
`vars` passed to it). It never reaches the runner."""

from __future__ import annotations

from typing import ClassVar

from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.schema import StepBase, StepKind


class IncludeStep(StepBase):
    kind: ClassVar[str] = "include"
    include: str  # the playbook's path, relative to the including one


def run_step(step: IncludeStep, ctx: StepContext, timeout: float | None) -> Outcome:
    del ctx, timeout
    return Outcome("failed", "", f"step kind {step.kind} cannot run here")


def describe_step(step: IncludeStep) -> str:
    return step.kind


KIND = StepKind(IncludeStep, run_step, describe_step, rollback=False)
