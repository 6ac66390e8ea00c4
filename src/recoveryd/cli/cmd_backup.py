"""`recoveryd backup [SOURCE...]`: snapshot sources now, to all their targets.

SIGINT/SIGTERM/SIGHUP stop the backup cleanly at the next chunk boundary: nothing is
committed, exit 130. A second signal stops at once (still nothing committed:
the manifest is written last).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.alerts import alert_under_replicated
from recoveryd.cli.context import Context
from recoveryd.cli.progress import Reporter
from recoveryd.errors import ExitCode
from recoveryd.model import BackupResult
from recoveryd.secrets import redact
from recoveryd.units import format_duration, format_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "backup",
        help="snapshot the named sources now (all when none named)",
        description="Snapshot the named sources now (all when none named). While load "
        "shedding is in force (SPEC §5) a source whose priority must wait is refused "
        "(exit 5, nothing started): name only the sources that may run, or use --force.",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="source names from the config")
    p.add_argument(
        "--force",
        action="store_true",
        help="run even while load shedding holds these sources back",
    )
    p.set_defaults(func=run)


@contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM/SIGHUP; a second one interrupts at once."""
    cancel = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = {
        s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield cancel
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    if not args.force:
        app.check_backup(cfg, args.sources or None)
    failed: app.PartialBackupError | None = None
    with cancel_on_signals() as cancel, Reporter("backup", quiet=ctx.json) as rep:
        try:
            results = app.backup(cfg, args.sources or None, progress=rep.callback, cancel=cancel)
        except app.PartialBackupError as exc:
            failed, results = exc, list(exc.results)
    show(results, ctx, failed)
    alert_under_replicated(cfg, results)
    for r in results:
        if r.degraded and not ctx.json:
            output.warn(
                f"snapshot {r.id[:12]} of {r.source} is missing on "
                + "; ".join(f"{m.target} ({m.error})" for m in r.missing_targets)
            )
    if failed is not None:
        raise failed
    return int(ExitCode.DEGRADED) if any(r.degraded for r in results) else 0


def show(
    results: list[BackupResult], ctx: Context, failed: app.PartialBackupError | None = None
) -> None:
    """The snapshots taken (and, with `--json`, the sources that failed): the document, or
    a table."""
    if ctx.json:
        doc: dict[str, object] = {"snapshots": [r.to_json() for r in results]}
        doc["failed"] = [
            {"source": source, "error": redact(exc.message), "exit": int(exc.exit_code)}
            for source, exc in (failed.failures if failed else ())
        ]
        output.emit_json(doc)
        return
    if not results:
        return
    rows = [
        (
            r.id[:12],
            r.source,
            ",".join(r.targets),
            format_size(r.size),
            format_size(r.stored_size),
            format_duration(r.seconds),
        )
        for r in results
    ]
    output.table(("SNAPSHOT", "SOURCE", "TARGETS", "SIZE", "STORED", "TOOK"), rows)
