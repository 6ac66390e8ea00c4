"""The `sleep` kind: wait a fixed time (an abort ends it early)."""

from __future__ import annotations

from typing import ClassVar

from recoveryd.configtypes import Duration
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.schema import StepBase, StepKind


class SleepStep(StepBase):
    kind: ClassVar[str] = "sleep"
    sleep: Duration


def run_step(step: SleepStep, ctx: StepContext, timeout: float | None) -> Outcome:
    del timeout
    if ctx.cancel.wait(step.sleep):
        return Outcome("aborted", "", "aborted during sleep")
    return Outcome("ok", f"slept {step.sleep:g}s")


def describe_step(step: SleepStep) -> str:
    return f"sleep {step.sleep:g}s"


KIND = StepKind(SleepStep, run_step, describe_step)
