"""`recoveryd config check`: validate the configuration and every playbook it names."""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.daemon.schedule import plan_jobs
from recoveryd.errors import ConfigError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("config", help="configuration tools")
    cs = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = cs.add_parser("check", help="validate the configuration file and the playbooks it names")
    c.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    try:
        plan_jobs(cfg.config)  # ConfigError naming the key path of a bad schedule
    except ConfigError as exc:
        raise cfg.document.locate(exc) from None
    summary = app.check_config(cfg)
    if ctx.json:
        output.emit_json({"ok": True, **summary.to_json()})
    else:
        output.line(
            f"{cfg.path}: ok ({len(cfg.config.sources)} source(s), "
            f"{len(cfg.config.targets)} target(s), {summary.playbooks} playbook(s))"
        )
        for t in summary.targets:
            output.line(f"  target {t.target}: {t.state} ({t.location})")
        for w in summary.warnings:
            output.warn(w)
    return 0
