"""The `approve` kind: a manual gate; waits until enough configured approvers signed an
approval of the run (`recoveryd drill approve RUN_ID --key FILE`, see
`drills/approvals.py`)."""

from __future__ import annotations

from typing import ClassVar

from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.schema import StepBase, StepKind

DEFAULT_APPROVAL_TIMEOUT = 3600.0


class ApproveStep(StepBase):
    kind: ClassVar[str] = "approve"
    approve: str  # the message shown to the approvers


def run_approve(ctx: StepContext, *, message: str, count: int, timeout: float) -> Outcome:
    try:
        users = ctx.approvals.wait_for(count, timeout, ctx.cancel)
    except TimeoutError:
        return Outcome("timeout", message, f"fewer than {count} approval(s) within {timeout:g}s")
    except InterruptedError:
        return Outcome("aborted", message, "aborted while waiting for approval")
    return Outcome("ok", f"{message}\napproved by {', '.join(users)}")


def run_step(step: ApproveStep, ctx: StepContext, timeout: float | None) -> Outcome:
    return run_approve(
        ctx, message=step.approve, count=step.approvals, timeout=timeout or DEFAULT_APPROVAL_TIMEOUT
    )


def describe_step(step: ApproveStep) -> str:
    return f"wait for {step.approvals} approval(s): {step.approve}"


KIND = StepKind(ApproveStep, run_step, describe_step, rollback=False)
