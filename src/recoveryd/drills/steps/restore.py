"""The `restore` kind: the newest snapshot of `source` (or the id in `snapshot`) restored
into the scratch database `into`, the `checks` run against it, and with `drop_after` the
scratch database dropped again (the step's automatic undo)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from pydantic import Field

from recoveryd.config import Check, LoadedConfig
from recoveryd.configtypes import Text
from recoveryd.drills.expect import matches
from recoveryd.drills.steps.base import DEFAULT_TIMEOUT, Outcome, StepContext
from recoveryd.drills.steps.ops import need, newest_snapshot, unknown_sources
from recoveryd.drills.steps.schema import Model, Problem, StepBase, StepKind
from recoveryd.drills.steps.scratch import drop_database, scratch_exists
from recoveryd.drills.steps.sql import query
from recoveryd.errors import RecoverydError
from recoveryd.secrets import resolve_secret


class RestoreOp(Model):
    source: Text | None = None
    snapshot: Text = "latest"
    into: Text
    target: Text | None = None
    checks: list[Check] = Field(default_factory=list)
    drop_after: bool = False  # drop the scratch database when the drill ends
    password_file: str | None = None  # password of the scratch database


class RestoreStep(StepBase):
    kind: ClassVar[str] = "restore"
    restore: RestoreOp

    def sources(self) -> list[str]:
        return [self.restore.source] if self.restore.source else []


def validate_step(step: RestoreStep, cfg: LoadedConfig | None) -> Sequence[Problem]:
    return unknown_sources(step.kind, step.sources(), cfg)


def source_kind(cfg: LoadedConfig, source: str | None) -> str | None:
    if source and source in cfg.config.sources:
        return str(cfg.config.sources[source].kind)
    return None


def run_checks(
    into: str,
    engine: str | None,
    checks: Sequence[Check],
    timeout: float,
    password: str | None = None,
) -> Outcome:
    lines: list[str] = []
    for check in checks:
        try:
            value = query(into, check.sql, engine=engine, timeout=timeout, password=password)
        except RecoverydError as exc:
            return Outcome("failed", "\n".join(lines), f"check {check.sql!r}: {exc.message}")
        verdict = matches(check.expect, value)
        lines.append(f"{check.sql} -> {value}")
        if not verdict.ok:
            return Outcome("failed", "\n".join(lines), f"check {check.sql!r}: {verdict.detail}")
    return Outcome("ok", "\n".join(lines))


def run_step(step: RestoreStep, ctx: StepContext, timeout: float | None) -> Outcome:
    op = step.restore
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    cfg, ops = need(ctx, "restore")
    engine = _engine(source_kind(cfg, op.source))
    password = None
    if op.password_file:
        password = resolve_secret(op.password_file, ctx.base_dir, setting="restore.password_file")
    undo = None
    try:
        if engine is not None and scratch_exists(op.into, engine, password):
            return Outcome(
                "failed",
                "",
                "the scratch database named by into already exists; a restore drill restores "
                "only into a database it creates (and drops after): drop it if it is a "
                "leftover scratch copy, or name a new one",
            )
        undo = _dropper(op.into, engine, password) if op.drop_after and engine else None
        snap = op.snapshot
        if snap == "latest":
            snap = newest_snapshot(ops, cfg, op.source, op.target)
        ops.restore(cfg, snap, op.into, target=op.target, password=password)
        checked = run_checks(op.into, engine, op.checks, limit, password)
    except RecoverydError as exc:
        return Outcome("failed", "", exc.message, undo=undo)
    text = f"restored snapshot {snap} into the scratch database\n{checked.output}"
    return Outcome(checked.status, text.strip(), checked.error, undo=undo)


def _dropper(into: str, engine: str, password: str | None) -> Callable[[], Outcome]:
    def undo() -> Outcome:
        problem = drop_database(into, engine, password)
        return (
            Outcome("ok", "scratch database dropped")
            if problem is None
            else Outcome("failed", "", problem)
        )

    return undo


def _engine(kind: str | None) -> str | None:
    return kind if kind in ("postgresql", "mysql", "sqlite") else None


def describe_step(step: RestoreStep) -> str:
    op = step.restore
    return f"restore {op.snapshot} of {op.source} into {op.into}"


KIND = StepKind(RestoreStep, run_step, describe_step, validate_step)
