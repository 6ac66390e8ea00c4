"""`recoveryd restore SNAPSHOT --to DEST`: into a DSN, a database path or a directory."""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.cmd_backup import cancel_on_signals
from recoveryd.cli.context import Context
from recoveryd.cli.progress import Reporter


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "restore", help="restore a snapshot into DEST (a DSN, a database path or a directory)"
    )
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id or a unique prefix of it")
    p.add_argument("--to", dest="dest", required=True, metavar="DEST", help="where to restore")
    p.add_argument("--target", help="read from this target (default: the first that has it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    with cancel_on_signals(), Reporter("restore", quiet=ctx.json) as rep:
        done = app.restore(cfg, args.snapshot, args.dest, target=args.target, progress=rep.callback)
    if ctx.json:
        output.emit_json({"snapshot": done.id, "source": done.source, "dest": args.dest})
    else:
        output.line(f"restored snapshot {done.id[:12]} of {done.source} into {args.dest}")
    return 0
