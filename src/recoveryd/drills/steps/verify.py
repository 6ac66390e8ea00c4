"""The `verify` kind: check `snapshots` (or the newest of `source`) in the stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from recoveryd.config import LoadedConfig
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.ops import need, newest_snapshot, unknown_sources
from recoveryd.drills.steps.schema import Model, Problem, StepBase, StepKind
from recoveryd.errors import RecoverydError


class VerifyOp(Model):
    snapshots: list[str] = Field(default_factory=list)
    source: str | None = None
    read_data: bool = False
    target: str | None = None


class VerifyStep(StepBase):
    kind: ClassVar[str] = "verify"
    verify: VerifyOp

    def sources(self) -> list[str]:
        return [self.verify.source] if self.verify.source else []


def validate_step(step: VerifyStep, cfg: LoadedConfig | None) -> Sequence[Problem]:
    return unknown_sources(step.kind, step.sources(), cfg)


def run_step(step: VerifyStep, ctx: StepContext, timeout: float | None) -> Outcome:
    del timeout
    op = step.verify
    cfg, ops = need(ctx, "verify")
    try:
        ids = list(op.snapshots)
        if not ids and op.source:
            ids = [newest_snapshot(ops, cfg, op.source, op.target)]
        report = ops.verify(cfg, ids, read_data=op.read_data, target=op.target)
    except RecoverydError as exc:
        return Outcome("failed", "", exc.message)
    text = f"{len(report.snapshots)} snapshot(s), {report.objects_checked} objects checked"
    if report.ok:
        return Outcome("ok", text)
    first = report.problems[0]
    return Outcome("failed", text, f"{first.snapshot or ''} {first.obj}: {first.message}".strip())


def describe_step(step: VerifyStep) -> str:
    return f"verify {', '.join(step.verify.snapshots) or step.verify.source or 'all'}"


KIND = StepKind(VerifyStep, run_step, describe_step, validate_step)
