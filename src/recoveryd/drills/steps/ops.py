"""`backup` / `restore` / `verify`: this daemon's own operations, through the
`SnapshotOperations` port the caller injected (`StepContext.ops`).

`restore` takes the newest snapshot of `source` (or the id in `snapshot`),
restores it into `into`, runs the `checks` against `into`, and, with
`drop_after`, drops the scratch database again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recoveryd.config import LoadedConfig
from recoveryd.drills.expect import matches
from recoveryd.drills.models import BackupOp, RestoreOp, VerifyOp
from recoveryd.drills.ports import SnapshotOperations
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.scratch import drop_database, scratch_exists
from recoveryd.drills.steps.sql import query
from recoveryd.errors import ConfigError, RecoverydError
from recoveryd.secrets import resolve_secret


def _need(ctx: StepContext, kind: str) -> tuple[LoadedConfig, SnapshotOperations]:
    if ctx.cfg is None:
        raise ConfigError(f"a {kind} step needs the daemon configuration; pass --config")
    if ctx.ops is None:
        raise ConfigError(
            f"a {kind} step needs the snapshot operations, and the caller of the drill runner "
            "gave none; run the playbook with `recoveryd drill run` or from the daemon"
        )
    return ctx.cfg, ctx.ops


def run_backup(ctx: StepContext, op: BackupOp) -> Outcome:
    cfg, ops = _need(ctx, "backup")
    try:
        results = ops.backup(cfg, op.sources or None, cancel=ctx.cancel)
    except RecoverydError as exc:
        return Outcome("failed", "", exc.message)
    lines = [
        f"{r.source}: snapshot {r.id} ({r.size} bytes) to {', '.join(r.targets)}" for r in results
    ]
    return Outcome("ok", "\n".join(lines))


def newest_snapshot(
    ops: SnapshotOperations, cfg: LoadedConfig, source: str | None, target: str | None
) -> str:
    snaps = ops.list_snapshots(cfg, source=source, target=target)
    if not snaps:
        where = f" in target {target}" if target else ""
        raise RecoverydError(f"no snapshot of {source or 'any source'}{where} to restore")
    return str(max(snaps, key=lambda s: s.time).id)


def source_kind(cfg: LoadedConfig, source: str | None) -> str | None:
    if source and source in cfg.config.sources:
        return str(cfg.config.sources[source].kind)
    return None


def run_checks(
    into: str, engine: str | None, checks: list[Any], timeout: float, password: str | None = None
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


def run_restore(ctx: StepContext, op: RestoreOp, timeout: float) -> Outcome:
    cfg, ops = _need(ctx, "restore")
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
        checked = run_checks(op.into, engine, list(op.checks), timeout, password)
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


def run_verify(ctx: StepContext, op: VerifyOp) -> Outcome:
    cfg, ops = _need(ctx, "verify")
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
