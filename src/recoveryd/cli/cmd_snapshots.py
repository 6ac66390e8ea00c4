"""`recoveryd snapshots [--source S] [--target T]`: list snapshots, merged across targets.

A target that cannot be opened, or a manifest that cannot be read, is named in a warning and
the rest is listed; when a snapshot could not be listed from any target (its only manifest
is damaged) the command exits 3 after the listing."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.errors import IntegrityError, RecoverydError, UsageError
from recoveryd.model import SnapshotInfo
from recoveryd.units import format_duration, format_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "snapshots", help="list snapshots: id, source, time, size, stored size, verified state"
    )
    p.add_argument("--source", help="only this source")
    p.add_argument("--target", help="only this target")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    unlisted: dict[str, RecoverydError] = {}
    damaged: list[IntegrityError] = []

    snaps = app.list_snapshots(
        ctx.config,
        source=args.source,
        target=args.target,
        on_error=unlisted.__setitem__,
        on_damaged=damaged.append,
    )
    if unlisted and set(unlisted) >= set(ctx.config.config.targets):
        # no target could be listed: an empty list would read as "no snapshots exist"
        raise next(iter(unlisted.values()))
    for target, exc in unlisted.items():
        output.warn(f"target {target} not listed: {exc.message}")
    for exc in damaged:
        output.warn(f"not listed: {exc.message}")
    _check_source(args, ctx, found=bool(snaps or unlisted or damaged))
    _show(snaps, ctx)
    listed = {s.id for s in snaps}
    missing = [exc for exc in damaged if exc.snapshot not in listed]
    if missing:
        # the rest is listed first: in an incident, the snapshots that remain matter; a
        # damaged copy whose snapshot is listed from another target is only warned about
        first = missing[0]
        raise IntegrityError(
            f"{len(missing)} snapshot(s) not listed: manifest damaged, the first {first.obj}; "
            "the others are listed; run `recoveryd verify` and restore from another target",
            snapshot=first.snapshot,
            obj=first.obj,
        )
    return 0


def _check_source(args: argparse.Namespace, ctx: Context, *, found: bool) -> None:
    sources = ctx.config.config.sources
    if args.source is not None and args.source not in sources and not found:
        # a source no longer configured still lists its snapshots; a typo must not read as
        # "no snapshots of it exist"
        known = ", ".join(sorted(sources)) or "none configured"
        raise UsageError(
            f'unknown source "{args.source}": not in the configuration and no snapshots of it '
            f"in the store; use one of: {known}"
        )


def _show(snaps: list[SnapshotInfo], ctx: Context) -> None:
    if ctx.json:
        output.emit_json([s.to_json() for s in snaps])
        return
    if not snaps:
        output.line("no snapshots yet; run `recoveryd backup` to take one")
        return
    now = datetime.now(UTC)
    rows = [
        (
            s.id[:12],
            s.source,
            s.kind,
            s.time.strftime("%Y-%m-%d %H:%M:%SZ"),
            format_duration(max(0.0, (now - s.time).total_seconds())) + " ago",
            format_size(s.size),
            format_size(s.stored_size),
            ",".join(s.targets),
            s.verified or "-",
        )
        for s in snaps
    ]
    output.table(
        ("ID", "SOURCE", "KIND", "TIME (UTC)", "AGE", "SIZE", "STORED", "TARGETS", "VERIFIED"),
        rows,
    )
