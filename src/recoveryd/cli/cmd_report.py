"""`recoveryd report ID [--format md|html|pdf] [--lang zh|en] [--out PATH]`.

Renders the report of a drill run or an incident from its hash-chained record
and the state store; prints the path written. The language defaults to the
configuration's `language`.
"""

from __future__ import annotations

import argparse
import configparser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.config import LoadedConfig
from recoveryd.errors import RecoverydError


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
        secrets=list(_known_secrets(cfg)),
    )
    if ctx.json:
        output.emit_json({"id": args.id, "format": args.fmt, "report": str(path)})
    else:
        output.line(str(path))
    return 0


def _known_secrets(cfg: LoadedConfig) -> Iterator[str]:
    """Secret values the configuration refers to, so that the report masks them even where
    no pattern would: source passwords and S3 keys. Unreadable references are skipped (the
    report does not need them; `config check` reports them)."""
    from recoveryd.secrets import resolve_secret

    base = cfg.path.parent
    refs: list[str] = []
    for source in cfg.config.sources.values():
        refs += [
            r
            for r in (getattr(source, "password_file", None), getattr(source, "password", None))
            if r
        ]
    for target in cfg.config.targets.values():
        refs += [
            r
            for r in (
                getattr(target, "access_key_id", None),
                getattr(target, "secret_access_key", None),
            )
            if r
        ]
        creds = getattr(target, "credentials_file", None)
        if creds:
            yield from _ini_values(cfg.resolve_path(creds))
    for ref in refs:
        try:
            yield resolve_secret(ref, base)
        except (RecoverydError, OSError):
            continue


def _ini_values(path: Path) -> Iterator[str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return
    for section in parser.sections():
        for key, value in parser.items(section):
            if "secret" in key or "token" in key or "password" in key:
                yield value.strip()
