"""`recoveryd key generate|rotate`: the master key file and the repositories' data keys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("key", help="generate or rotate the master key")
    ks = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    g = ks.add_parser("generate", help="create encryption.key_file (mode 0600)")
    g.add_argument("--force", action="store_true", help="overwrite an existing key file (danger)")
    g.add_argument(
        "--out",
        metavar="PATH",
        help="write the key here instead (with key_file: credential:NAME, the file "
        "LoadCredential= names)",
    )
    g.set_defaults(func=run)
    r = ks.add_parser(
        "rotate", help="new master key; re-wrap every target's data keys (old snapshots stay)"
    )
    r.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    if args.key_command == "generate":
        path = app.generate_key(cfg, force=args.force, out=Path(args.out) if args.out else None)
        if ctx.json:
            output.emit_json({"key_file": str(path)})
        else:
            output.line(
                f"wrote a new master key to {path}; keep a copy offline, away from the data"
            )
        return 0
    rotated = app.rotate_key(cfg)
    if ctx.json:
        output.emit_json(rotated.to_json())
    else:
        output.line(
            f"rotated the master key {rotated.key_file}; re-wrapped data keys on "
            f"{', '.join(rotated.targets) or 'no target'}; previous key kept at {rotated.previous}"
        )
    return 0
