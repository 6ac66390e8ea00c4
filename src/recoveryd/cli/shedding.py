"""The load-shedding guard of low-priority commands (copy, prune, verify): `--force`."""

from __future__ import annotations

import argparse

from recoveryd import app
from recoveryd.cli.context import Context


def add_force(p: argparse.ArgumentParser) -> None:
    """The `--force` flag that runs the command even while load shedding is in force."""
    p.add_argument(
        "--force",
        action="store_true",
        help="run even while load shedding is in force (otherwise refused with exit 5)",
    )


def refuse_while_shedding(args: argparse.Namespace, ctx: Context, job: str) -> None:
    """RefusedError (exit 5) with the reason when low-priority `job` must wait at the
    recorded shedding level, unless `--force` was given."""
    if not args.force:
        app.check_shedding(ctx.config, [(app.shedding.LOW, job)])
