"""`recoveryd copy --from T1 --to T2 [SNAPSHOT...]`: copy snapshots between stores."""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.cli.progress import Reporter
from recoveryd.cli.shedding import add_force, refuse_while_shedding


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "copy",
        help="copy snapshots between stores (off-site copy, leaving a vendor)",
        description="Copy snapshots between stores (off-site copy, leaving a vendor). "
        "Low-priority work: refused (exit 5) while load shedding is in force, unless --force.",
    )
    p.add_argument("--from", dest="from_target", required=True, metavar="T1")
    p.add_argument("--to", dest="to_target", required=True, metavar="T2")
    p.add_argument(
        "snapshots", nargs="*", metavar="SNAPSHOT", help="ids or prefixes (default: all)"
    )
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    refuse_while_shedding(args, ctx, "copy")
    with Reporter("copy", quiet=ctx.json) as rep:
        copied = app.copy(
            ctx.config, args.from_target, args.to_target, args.snapshots, progress=rep.callback
        )
    if ctx.json:
        output.emit_json({"copied": copied, "from": args.from_target, "to": args.to_target})
    else:
        output.line(f"copied {len(copied)} snapshot(s) from {args.from_target} to {args.to_target}")
        for sid in copied:
            output.line(f"  {sid}")
    return 0
