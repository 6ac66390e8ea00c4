"""What the `backup`, `restore` and `verify` kinds share: this daemon's own operations,
reached through the `SnapshotOperations` port the caller injected (`StepContext.ops`)."""

from __future__ import annotations

from collections.abc import Sequence

from recoveryd.config import LoadedConfig
from recoveryd.drills.ports import SnapshotOperations
from recoveryd.drills.steps.base import StepContext
from recoveryd.drills.steps.schema import Problem
from recoveryd.errors import ConfigError, RecoverydError


def need(ctx: StepContext, kind: str) -> tuple[LoadedConfig, SnapshotOperations]:
    """The configuration and the operations a `kind` step works with; ConfigError without."""
    if ctx.cfg is None:
        raise ConfigError(f"a {kind} step needs the daemon configuration; pass --config")
    if ctx.ops is None:
        raise ConfigError(
            f"a {kind} step needs the snapshot operations, and the caller of the drill runner "
            "gave none; run the playbook with `recoveryd drill run` or from the daemon"
        )
    return ctx.cfg, ctx.ops


def newest_snapshot(
    ops: SnapshotOperations, cfg: LoadedConfig, source: str | None, target: str | None
) -> str:
    snaps = ops.list_snapshots(cfg, source=source, target=target)
    if not snaps:
        where = f" in target {target}" if target else ""
        raise RecoverydError(f"no snapshot of {source or 'any source'}{where} to restore")
    return str(max(snaps, key=lambda s: s.time).id)


def unknown_sources(kind: str, names: Sequence[str], cfg: LoadedConfig | None) -> list[Problem]:
    """The first of `names` the configuration does not define, as a problem at the kind key."""
    if cfg is None:
        return []
    problems: list[Problem] = [
        ((kind,), f'unknown source "{name}" in the configuration')
        for name in names
        if name not in cfg.config.sources
    ]
    return problems[:1]
