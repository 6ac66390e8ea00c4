"""`recoveryd config check`: validate the configuration and every playbook it names.
`recoveryd config schema [--playbook]`: the JSON Schema of the configuration file (or of a
playbook), for an editor's YAML language server."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.daemon.schedule import plan_jobs


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("config", help="configuration tools")
    cs = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = cs.add_parser("check", help="validate the configuration file and the playbooks it names")
    c.set_defaults(func=run)
    s = cs.add_parser(
        "schema", help="print the JSON Schema of the configuration file (or of a playbook)"
    )
    s.add_argument("--playbook", action="store_true", help="the schema of playbooks instead")
    s.set_defaults(func=run_schema)


def run_schema(args: argparse.Namespace, ctx: Context) -> int:
    """Needs no configuration file: the schema comes from the models."""
    del ctx
    from recoveryd.schema import config_schema, playbook_schema

    output.emit_json(playbook_schema() if args.playbook else config_schema())
    return 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    # schedules are parsed where the daemon runs them; reported with every other problem
    summary = app.check_config(cfg, also=[partial(plan_jobs, cfg.config)])
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
