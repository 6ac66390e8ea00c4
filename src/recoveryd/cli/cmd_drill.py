"""`recoveryd drill validate|run|approve|list`: failover and restore drills (docs/PLAYBOOKS.md).

`run` prints the run id when it starts (approvers need it) and, at the end,
the result, the journal and the report path; `--json` prints the README's
document only ("JSON documents"). SIGINT/SIGTERM stop the drill cleanly (status
`interrupted`): a destructive step that is running ends first (a second signal stops it
at once), rollbacks run, steady state is checked again, and the exit code is 130. Exit
codes: 0 passed with objectives met; 4 failed, aborted by a stop condition or
missed an objective; 5 refused (approval missing, lock held); 2 invalid
playbook; 3 `list --verify` found an edited or deleted journal.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recoveryd import drill_records
from recoveryd.cli import anchored, output
from recoveryd.cli.context import Context
from recoveryd.config import DEFAULT_CONFIG_PATH, LoadedConfig
from recoveryd.errors import ExitCode, IntegrityError, UsageError
from recoveryd.units import format_duration


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "drill", help="validate, run, approve and list failover and restore drills"
    )
    p.add_argument("--state-dir", help="state directory (default: the configuration's state_dir)")
    dsub = p.add_subparsers(dest="drill_command", metavar="SUBCOMMAND", required=True)

    v = dsub.add_parser("validate", help="check a playbook completely without touching anything")
    v.add_argument("playbook")
    v.add_argument("--var", action="append", default=[], metavar="K=V")
    v.set_defaults(func=run_validate)

    r = dsub.add_parser("run", help="run a drill; prints the run id and the report path")
    r.add_argument("playbook")
    r.add_argument("--dry-run", action="store_true", help="run only the read-only probes")
    r.add_argument("--yes", action="store_true", help="allow destructive steps")
    r.add_argument("--var", action="append", default=[], metavar="K=V")
    r.set_defaults(func=run_run)

    a = dsub.add_parser(
        "approve", help="sign an approval of a waiting run, or place one handed over"
    )
    a.add_argument("run_id", metavar="RUN_ID", nargs="?")
    a.add_argument("--key", metavar="FILE", help="your private key (`approver keygen`)")
    a.add_argument(
        "--as", dest="as_name", metavar="NAME", help="approver name (default: the key's)"
    )
    a.add_argument("--out", metavar="FILE", help="write the approval here, to hand it over")
    a.add_argument(
        "--playbook-sha256", metavar="HEX", help="the playbook's hash, when the run is not here"
    )
    a.add_argument("--import", dest="import_file", metavar="FILE", help="place a handed-over one")
    a.set_defaults(func=run_approve)

    ls = dsub.add_parser("list", help="past drill runs with RTO/RPO vs objectives")
    ls.add_argument("--verify", action="store_true", help="check every journal's hash chain")
    ls.set_defaults(func=run_list)


def _vars(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: write it as NAME=VALUE")
        out[name] = value
    return out


def _config(args: argparse.Namespace, ctx: Context) -> LoadedConfig | None:
    """The configuration when one is given or present; drills can run without one."""
    explicit = args.config or os.environ.get("RECOVERYD_CONFIG")
    if explicit or Path(DEFAULT_CONFIG_PATH).exists():
        return ctx.config
    return None


def _state_dir(args: argparse.Namespace, cfg: LoadedConfig | None) -> Path:
    from recoveryd.drills.api import state_dir_of

    return state_dir_of(cfg, Path(args.state_dir) if args.state_dir else None)


def run_validate(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.drills.api import check_playbook

    loaded = check_playbook(Path(args.playbook), _config(args, ctx), _vars(args.var))
    book = loaded.playbook
    probes = len(book.preflight) + len(book.steady_state) + len(book.stop_conditions)
    for warning in loaded.warnings:
        output.warn(warning)
    if ctx.json:
        output.emit_json(
            {
                "playbook": args.playbook,
                "name": book.name,
                "valid": True,
                "steps": len(book.steps),
                "warnings": list(loaded.warnings),
            }
        )
    else:
        output.line(f"{args.playbook}: valid ({len(book.steps)} steps, {probes} probes)")
    return int(ExitCode.OK)


@contextmanager
def signals_cancel(cancel: threading.Event, force: threading.Event) -> Iterator[None]:
    """The first SIGINT, SIGTERM or SIGHUP (the terminal closed) sets `cancel` (the runner
    lets a destructive step end, then rolls back); the second sets `force` (the running
    step stops at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        del signum, frame
        if cancel.is_set():
            force.set()
        cancel.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _progress(as_json: bool) -> Any:
    def listener(raw: dict[str, Any]) -> None:
        rec = drill_records.parse(raw)
        if as_json:
            _progress_json(rec)
        elif rec is not None:
            _progress_line(rec)

    return listener


def _progress_json(rec: drill_records.JournalRecord | None) -> None:
    if isinstance(rec, drill_records.EventRecord) and rec.kind == "approval_requested":
        output.event({"event": "approval_requested", **rec.data})
    elif isinstance(rec, drill_records.RunStarted):
        output.event({"event": "drill_started", "run_id": rec.run_id})


def _progress_line(rec: drill_records.JournalRecord) -> None:
    if isinstance(rec, drill_records.RunStarted):
        output.line(f"drill run {rec.run_id} started by {rec.operator}")
    elif isinstance(rec, drill_records.StepRecord):
        err = f" - {rec.error}" if rec.error else ""
        output.line(f"  {rec.status:<8} {rec.phase}: {rec.name}{err}")
        if rec.status == "dry_run":
            for text in rec.output.splitlines():
                output.line(f"             {text}")
    elif isinstance(rec, drill_records.MarkRecord):
        output.line(f"  mark     {rec.mark}")
    elif isinstance(rec, drill_records.EventRecord) and rec.kind == "approval_requested":
        data = rec.data
        output.line(f"  waiting for {data.get('required')} approval(s): {data.get('command')}")
        output.line(f"  playbook SHA-256 {data.get('playbook_sha256')}")
    elif isinstance(rec, drill_records.ApprovalRecord):
        output.line(f"  approved by {rec.user}")
    elif isinstance(rec, drill_records.StopConditionRecord) and rec.status == "tripped":
        output.line(f"  STOP     {rec.name}: {rec.detail}")
    elif isinstance(rec, drill_records.AbortRecord):
        output.line(_abort_line(rec))


def _abort_line(rec: drill_records.AbortRecord) -> str:
    during = rec.during
    if rec.status == "requested" and rec.deferred:
        return f'  ABORT    {rec.cause}: waiting for destructive step "{during}" to end'
    if rec.status == "forced":
        return f'  ABORT    second signal: stopping "{during}" now'
    if rec.status == "effective":
        return "  ABORT    in effect: no further step starts; rolling back"
    return f"  ABORT    {rec.cause}"


def run_run(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.app.drillops import AppSnapshotOperations
    from recoveryd.app.reporting import report_writer
    from recoveryd.drills.api import run_playbook

    cfg = _config(args, ctx)
    cancel, force = threading.Event(), threading.Event()
    with signals_cancel(cancel, force):
        result = run_playbook(
            cfg,
            Path(args.playbook),
            yes=args.yes,
            dry_run=args.dry_run,
            vars=_vars(args.var),
            cancel=cancel,
            force=force,
            state_dir=Path(args.state_dir) if args.state_dir else None,
            listener=_progress(ctx.json),
            report=report_writer(cfg),
            ops=AppSnapshotOperations(),
        )
    if ctx.json:
        output.emit_json(result.to_json())
    else:
        rto = "-" if result.rto_seconds is None else format_duration(result.rto_seconds)
        rpo = "-" if result.rpo_seconds is None else format_duration(result.rpo_seconds)
        output.line(
            f"run {result.run_id}: {result.status}; RTO {rto}, RPO {rpo}; {_judged(result)}"
        )
        if result.error:
            output.line(f"  {result.error}")
        output.line(f"journal {result.journal}")
        output.line(f"report {result.report or '(not rendered)'}")
    return int(result.exit_code)


def _judged(result: Any) -> str:
    if result.objectives_met is None:
        return "dry run: objectives not judged"
    return "objectives met" if result.objectives_met else "objectives NOT met"


def run_approve(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.drills.api import approve, approver_keys, import_approval

    cfg = _config(args, ctx)
    state_dir = _state_dir(args, cfg)
    if args.import_file:
        who, path = import_approval(state_dir, Path(args.import_file))
    elif args.run_id and args.key:
        who, path = approve(
            state_dir,
            args.run_id,
            Path(args.key),
            name=args.as_name,
            out=Path(args.out) if args.out else None,
            playbook_sha256=args.playbook_sha256,
            keys=approver_keys(cfg),
        )
    else:
        raise UsageError(
            "drill approve: give RUN_ID --key FILE to sign an approval, or --import FILE to "
            "place one handed over"
        )
    if ctx.json:
        output.emit_json({"run_id": args.run_id, "approved_by": who, "approval": str(path)})
    else:
        output.line(f"approval of {who} placed: {path}")
    return int(ExitCode.OK)


def _vs(achieved: float | None, objective: float | None) -> str:
    got = "-" if achieved is None else format_duration(achieved)
    return got if objective is None else f"{got} / {format_duration(objective)}"


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.drills.api import list_runs

    cfg = _config(args, ctx)
    runs = list_runs(_state_dir(args, cfg), verify=args.verify)
    broken = [r for r in runs if r.intact is False]
    if ctx.json:
        output.emit_json([r.to_json() for r in runs])
    else:
        headers = ["RUN", "STATUS", "RTO / OBJ", "RPO / OBJ", "OBJECTIVES"]
        if args.verify:
            headers.append("JOURNAL")
        rows = []
        for r in runs:
            met = {True: "met", False: "missed", None: "-"}[r.objectives_met]
            row = [r.run_id, r.status + (" (dry run)" if r.dry_run else "")]
            row += [_vs(r.rto_seconds, r.rto_objective), _vs(r.rpo_seconds, r.rpo_objective), met]
            if args.verify:
                row.append("intact" if r.intact else f"TAMPERED: {r.problem}")
            rows.append(row)
        output.table(headers, rows)
    if args.verify and not args.state_dir:
        anchored.check(cfg, lambda name: name.startswith("drills/"), "drill journals")
    if broken:
        first = broken[0]
        raise IntegrityError(
            f"drill journal {first.journal} does not verify ({first.problem}); "
            "keep what is left as evidence and investigate"
        )
    return int(ExitCode.OK)
