"""`recoveryd approver keygen NAME [--out DIR]`: an approver's Ed25519 key pair.

Writes `NAME.key` (private, 0600: it stays with the approver) and `NAME.pub`
(one line, `ed25519 <base64> NAME`, for the configuration's `approvers:`) and
prints both paths; `--json` prints `{"private_key", "public_key_file",
"public_key"}`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.errors import ExitCode, UsageError

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "approver", help="keys of the people who approve destructive drill steps"
    )
    asub = p.add_subparsers(dest="approver_command", metavar="ACTION", required=True)
    k = asub.add_parser("keygen", help="make an approver's key pair (NAME.key and NAME.pub)")
    k.add_argument("name", metavar="NAME", help="the approver's name, as in `approvers:`")
    k.add_argument("--out", default=".", metavar="DIR", help="where to write (default: here)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.drills.signing import generate

    name = args.name
    if not name or not set(name) <= _NAME_CHARS or name[0] in ".-":
        raise UsageError(
            f'approver keygen: "{name}" is not a usable name; use letters, digits, "_", "." '
            'and "-", as in the configuration\'s approvers:'
        )
    pair = generate(name, Path(args.out))
    if ctx.json:
        output.emit_json(
            {
                "private_key": str(pair.private_key),
                "public_key_file": str(pair.public_key_file),
                "public_key": pair.public_key,
            }
        )
    else:
        output.line(f"private key {pair.private_key} (keep it to yourself)")
        output.line(f"public key  {pair.public_key_file} (give it to the administrator)")
    return int(ExitCode.OK)
