"""`recoveryd daemon`: not built yet."""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd.cli.context import Context
from recoveryd.errors import RecoverydError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("daemon", help="(not available yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    raise RecoverydError("daemon: not available in this version yet")
