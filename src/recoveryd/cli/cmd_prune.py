"""`recoveryd prune [--dry-run]`: apply retention, then remove unreferenced data."""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.cli.shedding import add_force, refuse_while_shedding
from recoveryd.units import format_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "prune",
        help="apply retention and remove unreferenced data",
        description="Apply retention, remove unreferenced data, and abort S3 multipart "
        "uploads left unfinished for over 24 hours. The newest snapshot of each source, and "
        "the newest one that verified, are always kept. Refused (exit 5) unless --force: "
        "while load shedding is in force (low-priority work), and when the retention would "
        "forget more than half of a source's snapshots on a target.",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    refuse_while_shedding(args, ctx, "prune")
    report = app.prune(ctx.config, dry_run=args.dry_run, force=args.force)
    if ctx.json:
        output.emit_json(report.to_json())
        return 0
    verb = "would remove" if args.dry_run else "removed"
    if not report.targets:
        output.line("no target holds a repository yet; nothing to prune")
    for t in report.targets:
        output.line(
            f"{t.target}: kept {len(t.kept)} snapshot(s), {verb} {len(t.forgotten)} snapshot(s) "
            f"and {t.deleted_objects} unreferenced object(s) ({format_size(t.deleted_bytes)})"
        )
        for sid in t.forgotten:
            output.line(f"  {verb} {sid}")
        if t.repacked:
            rewrote = "would rewrite" if args.dry_run else "rewrote"
            output.line(f"  {rewrote} {t.repacked} partly used pack(s)")
        if t.skipped_locked:
            output.line(f"  kept {len(t.skipped_locked)} object(s) still under Object Lock")
        if report.aborted_uploads.get(t.target):
            output.line(f"  aborted {report.aborted_uploads[t.target]} stale multipart upload(s)")
        if report.removed_temp_objects.get(t.target):
            output.line(
                f"  removed {report.removed_temp_objects[t.target]} stale temporary file(s) "
                "of interrupted writes"
            )
    return 0
