"""`recoveryd report ID [--format md|html|pdf] [--lang zh|en] [--out PATH]`.

Renders the report of a drill run or an incident from its hash-chained record
and the state store; prints the path written. The language defaults to the
configuration's `language`. Every secret the configuration refers to is masked
(loading it registers them with the one redactor of `recoveryd.secrets`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recoveryd.cli import output
from recoveryd.cli.context import Context


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report", help="render the report of a drill run or incident"
    )
    p.add_argument("id", metavar="RUN_ID|INCIDENT_ID")
    p.add_argument("--format", dest="fmt", default="html", choices=["md", "html", "pdf"])
    p.add_argument("--lang", choices=["zh", "en"], help="default: the configuration's language")
    p.add_argument("--out", help="file to write (default: next to the record)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.reports import render_run_report

    cfg = ctx.config
    state_dir = cfg.resolve_path(cfg.config.state_dir)
    path = render_run_report(
        state_dir,
        args.id,
        fmt=args.fmt,
        lang=args.lang or cfg.config.language,
        out=Path(args.out) if args.out else None,
        config=cfg.config,
    )
    if ctx.json:
        output.emit_json({"id": args.id, "format": args.fmt, "report": str(path)})
    else:
        output.line(str(path))
    return 0
