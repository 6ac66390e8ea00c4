"""`recoveryd verify [SNAPSHOT...] [--read-data [--sample]]`: integrity check; exit 3 on damage."""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.cli.progress import Reporter
from recoveryd.cli.shedding import add_force, refuse_while_shedding
from recoveryd.errors import IntegrityError, UsageError
from recoveryd.units import format_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="check integrity: structure always, every byte with --read-data",
        description="Check integrity: structure always, every byte with --read-data. "
        "Low-priority work: refused (exit 5) while load shedding is in force, unless --force.",
    )
    p.add_argument(
        "snapshots", nargs="*", metavar="SNAPSHOT", help="ids or prefixes (default: all)"
    )
    p.add_argument(
        "--read-data", action="store_true", help="read and authenticate every chunk's bytes"
    )
    p.add_argument(
        "--sample", action="store_true", help="with --read-data: read a random sample of chunks"
    )
    p.add_argument("--target", help="only this target")
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.sample and not args.read_data:
        raise UsageError(
            "verify: --sample chooses which chunks --read-data reads; "
            "use `verify --read-data --sample`"
        )
    read_data: bool | str = ("sample" if args.sample else True) if args.read_data else False
    refuse_while_shedding(args, ctx, "verify")
    with Reporter("verify", quiet=ctx.json) as rep:
        report = app.verify(
            ctx.config,
            args.snapshots,
            read_data=read_data,
            target=args.target,
            strict=False,
            progress=rep.callback,
        )
    if ctx.json:
        output.emit_json(
            {
                "ok": report.ok,
                "snapshots": list(report.snapshots),
                "objects_checked": report.objects_checked,
                "bytes_read": report.bytes_read,
                "problems": [
                    {"snapshot": p.snapshot, "object": p.obj, "message": p.message}
                    for p in report.problems
                ],
            }
        )
    else:
        for p in report.problems:
            output.line(f"FAILED snapshot {p.snapshot or '-'}: object {p.obj}: {p.message}")
        output.line(
            f"checked {len(report.snapshots)} snapshot(s), {report.objects_checked} object(s), "
            f"read {format_size(report.bytes_read)}: "
            + ("ok" if report.ok else f"{len(report.problems)} problem(s)")
        )
    if not report.ok:
        first = report.problems[0]
        raise IntegrityError(
            f"verify failed: snapshot {first.snapshot or '-'}, object {first.obj}: {first.message}"
            f" ({len(report.problems)} problem(s) in all); restore from another target or copy",
            snapshot=first.snapshot,
            obj=first.obj,
        )
    return 0
