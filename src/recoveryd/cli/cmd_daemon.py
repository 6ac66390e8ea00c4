"""`recoveryd daemon [--once]`: run the scheduler in the foreground (systemd `ExecStart`).

Logs JSON lines to stdout (journald) unless stdout is a terminal. Exit codes:
0 after a clean stop; 2 for an invalid configuration; 5 when another daemon
holds the state directory. `--once` runs every job that is due now, waits for
them and exits with the worst exit code of their results.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from recoveryd.cli.context import Context
from recoveryd.observe import configure_logging


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "daemon", help="run the scheduler in the foreground (systemd ExecStart)"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="run every job that is due now, wait for them, exit with the worst exit code",
    )
    p.add_argument(
        "--member",
        metavar="NAME",
        default=None,
        help="fleet mode: this daemon's member name (default: RECOVERYD_MEMBER, then "
        "fleet.member, then the host name)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.daemon.service import Daemon

    level = ctx.log_level if ctx.log_level != "warning" else "info"
    configure_logging(level, daemon=True)
    member = args.member or os.environ.get("RECOVERYD_MEMBER") or None
    return Daemon(args.config, once=bool(args.once), member=member).run()
