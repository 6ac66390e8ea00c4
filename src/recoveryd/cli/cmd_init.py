"""`recoveryd init [TARGET...]`: create the repository of each target (all when none named).

The only command that creates repositories. A target that already holds a
repository opened by the configured master key is left as it is, with a
message; one made with another key is refused (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd.app.repos import init_repositories
from recoveryd.cli import output
from recoveryd.cli.context import Context


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "init",
        help="create the repository of each target (all when none named)",
        description="Create the repository of each named target (all configured targets "
        "when none is named), encrypted with the configured master key and cipher. Run it "
        "once after `recoveryd key generate`; no other command creates a repository. A "
        "target that already holds a repository of this key is left as it is.",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="target names from the config")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    results = init_repositories(ctx.config, args.targets)
    if ctx.json:
        output.emit_json({"targets": [r.to_json() for r in results]})
        return 0
    for r in results:
        if r.created:
            output.line(f"{r.target}: created a repository at {r.location}")
        else:
            output.line(
                f"{r.target}: {r.location} already holds a repository of this key; nothing to do"
            )
    return 0
