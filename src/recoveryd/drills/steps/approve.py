"""`approve`: a manual gate; waits until enough configured approvers signed an approval of the run
(`recoveryd drill approve RUN_ID --key FILE`, see `drills/approvals.py`)."""

from __future__ import annotations

from recoveryd.drills.steps.base import Outcome, StepContext


def run_approve(ctx: StepContext, *, message: str, count: int, timeout: float) -> Outcome:
    try:
        users = ctx.approvals.wait_for(count, timeout, ctx.cancel)
    except TimeoutError:
        return Outcome("timeout", message, f"fewer than {count} approval(s) within {timeout:g}s")
    except InterruptedError:
        return Outcome("aborted", message, "aborted while waiting for approval")
    return Outcome("ok", f"{message}\napproved by {', '.join(users)}")
