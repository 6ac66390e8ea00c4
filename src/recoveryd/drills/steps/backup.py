"""The `backup` kind: snapshot `sources` (every configured source when empty) now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from recoveryd.config import LoadedConfig
from recoveryd.configtypes import Text
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.ops import need, unknown_sources
from recoveryd.drills.steps.schema import Model, Problem, StepBase, StepKind
from recoveryd.errors import RecoverydError


class BackupOp(Model):
    sources: list[Text] = Field(default_factory=list)


class BackupStep(StepBase):
    kind: ClassVar[str] = "backup"
    backup: BackupOp

    def sources(self) -> list[str]:
        return list(self.backup.sources)


def validate_step(step: BackupStep, cfg: LoadedConfig | None) -> Sequence[Problem]:
    return unknown_sources(step.kind, step.sources(), cfg)


def run_step(step: BackupStep, ctx: StepContext, timeout: float | None) -> Outcome:
    del timeout
    cfg, ops = need(ctx, "backup")
    try:
        results = ops.backup(cfg, step.backup.sources or None, cancel=ctx.cancel)
    except RecoverydError as exc:
        return Outcome("failed", "", exc.message)
    lines = [
        f"{r.source}: snapshot {r.id} ({r.size} bytes) to {', '.join(r.targets)}" for r in results
    ]
    return Outcome("ok", "\n".join(lines))


def describe_step(step: BackupStep) -> str:
    return f"backup {', '.join(step.backup.sources) or 'all sources'}"


KIND = StepKind(BackupStep, run_step, describe_step, validate_step)
