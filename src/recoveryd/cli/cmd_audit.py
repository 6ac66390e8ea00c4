"""`recoveryd audit verify|show`: the hash-chained audit log of every operation.

`verify` checks every link of `state_dir/audit.jsonl` and exits 3 naming the
first edited, reordered or deleted record, or when the anchors in the stores show
the log deleted, truncated or rewritten; `show` lists the records.
"""

from __future__ import annotations

import argparse
from typing import Any

from recoveryd.audit import AUDIT_FILE, AuditLog
from recoveryd.cli import anchored, output
from recoveryd.cli.context import Context
from recoveryd.errors import IntegrityError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "audit", help="verify or show the audit log of every operation"
    )
    verbs = p.add_subparsers(dest="audit_command", metavar="VERB")
    v = verbs.add_parser("verify", help="check the hash chain; exit 3 when a record was changed")
    v.set_defaults(func=run_verify)
    s = verbs.add_parser("show", help="list the records, oldest first")
    s.add_argument("--last", type=int, default=50, help="show only the last N records (0: all)")
    s.set_defaults(func=run_show)
    p.set_defaults(func=run_verify)


def _log(ctx: Context) -> AuditLog:
    cfg = ctx.config
    return AuditLog(cfg.resolve_path(cfg.config.state_dir))


def run_verify(args: argparse.Namespace, ctx: Context) -> int:
    log = _log(ctx)
    status = log.verify()
    if ctx.json:
        output.emit_json(
            {
                "ok": status.ok,
                "records": status.records,
                "head": status.head,
                "problem": status.problem,
            }
        )
    if not status.ok:
        raise IntegrityError(
            f"audit log {log.path}: {status.problem}; records after it cannot be trusted "
            "(keep the file as evidence and investigate)"
        )
    anchored.check(ctx.config, lambda name: name == AUDIT_FILE, f"audit log {log.path}")
    if not ctx.json:
        output.line(f"audit log {log.path}: {status.records} records intact; head {status.head}")
    return 0


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    records = _log(ctx).records()
    if args.last:
        records = records[-args.last :]
    if ctx.json:
        output.emit_json(records)
        return 0
    output.table(
        ["time", "user", "origin", "command", "args", "result"],
        [
            (r.get("time"), r.get("user"), r.get("origin"), r.get("command"),
             " ".join(r.get("args") or []), r.get("result"))
            for r in records
        ],
    )  # fmt: skip
    return 0
