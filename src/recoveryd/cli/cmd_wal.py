"""`recoveryd wal-push SOURCE PATH` and `recoveryd wal-get SOURCE NAME DEST`: the
`archive_command` and `restore_command` of a PostgreSQL source (docs/OPERATIONS.md,
"Continuous WAL archiving")."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from recoveryd.app.wal import wal_get, wal_push
from recoveryd.cli import output
from recoveryd.cli.context import Context


def register(sub: Any) -> None:
    push: argparse.ArgumentParser = sub.add_parser(
        "wal-push",
        help="archive one WAL file (PostgreSQL's archive_command)",
        description="Archive one WAL file into every target of a PostgreSQL source; exit 0 "
        "only once it is stored durably in each. Idempotent: a file already archived with "
        "the same content succeeds, with other content it fails. Use as "
        "archive_command = 'recoveryd --config CFG wal-push SOURCE %%p'.",
    )
    push.add_argument("source", metavar="SOURCE", help="the PostgreSQL source")
    push.add_argument("path", metavar="PATH", help="the WAL file (%%p)")
    push.add_argument(
        "--spool",
        metavar="DIR",
        help="archive asynchronously: a worker per source archives the segments PostgreSQL "
        "has marked ready, several at once, and leaves acknowledgements in DIR (writable "
        "by the server's user); this call answers from them",
    )
    push.add_argument(
        "--jobs", type=int, default=4, help="with --spool: segments archived at once (4)"
    )
    push.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="with --spool: seconds to wait for the worker before archiving this file itself (60)",
    )
    push.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    push.set_defaults(func=run_push)
    get: argparse.ArgumentParser = sub.add_parser(
        "wal-get",
        help="fetch one archived WAL file (PostgreSQL's restore_command)",
        description="Fetch an archived WAL file of a PostgreSQL source and write it to DEST; "
        "exit 1 when it is not archived (recovery ends there), 3 when it is damaged. Use as "
        "restore_command = 'recoveryd --config CFG wal-get SOURCE %%f %%p'.",
    )
    get.add_argument("source", metavar="SOURCE", help="the PostgreSQL source")
    get.add_argument("name", metavar="NAME", help="the WAL file's name (%%f)")
    get.add_argument("dest", metavar="DEST", help="where to write it (%%p)")
    get.set_defaults(func=run_get)
    _stream_parser(
        sub,
        "wal",
        "stream a PostgreSQL source's WAL into its targets until stopped",
        "Stream WAL with pg_receivewal from a replication slot (created when "
        "missing) into every target of a PostgreSQL source: completed segments as "
        "wal-push stores them, the segment being written every second as a partial one, "
        "for an RPO of seconds. Runs until SIGTERM or SIGINT (exit 0); the daemon does "
        "the same for sources with `wal: {stream: true}`.",
        "the PostgreSQL source",
    )
    _stream_parser(
        sub,
        "binlog",
        "stream a MariaDB/MySQL source's binary logs into its targets until stopped",
        "Copy the server's binary logs as they are written (mariadb-binlog "
        "--read-from-remote-server --raw --stop-never; the user needs REPLICATION SLAVE) "
        "into every target of a MariaDB/MySQL source: each completed log as "
        "binlog/<source>/<file>, the log being written every second as a partial one. "
        "`restore SOURCE --time T --to DSN` replays them after the newest dump before T. "
        "Runs until SIGTERM or SIGINT (exit 0).",
        "the MariaDB/MySQL source",
    )


def _stream_parser(sub: Any, streamer: str, summary: str, description: str, source: str) -> None:
    """`wal-stream` and `binlog-stream`: one SOURCE, run by `run_stream`."""
    p: argparse.ArgumentParser = sub.add_parser(
        f"{streamer}-stream", help=summary, description=description
    )
    p.add_argument("source", metavar="SOURCE", help=source)
    p.set_defaults(func=run_stream, streamer=streamer)


def run_push(args: argparse.Namespace, ctx: Context) -> int:
    if args.spool:
        answered = _push_through_spool(args, ctx)
        if answered is not None:
            return answered
    results = wal_push(ctx.config, args.source, Path(args.path))
    if ctx.json:
        output.emit_json(
            {"file": Path(args.path).name, "targets": {t: r.outcome for t, r in results.items()}}
        )
    return 0


def run_get(args: argparse.Namespace, ctx: Context) -> int:
    target = wal_get(ctx.config, args.source, args.name, Path(args.dest))
    if ctx.json:
        output.emit_json({"file": args.name, "target": target})
    return 0


def run_stream(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.app.walstream import BinlogStreamer, WalStreamer

    def event(kind: str, data: dict[str, object]) -> None:
        output.warn(f"{kind}: {data}")

    kind = BinlogStreamer if args.streamer == "binlog" else WalStreamer
    streamer = kind(ctx.config, args.source, on_event=event)
    stop = threading.Event()
    try:
        state = streamer.run(stop)
    except KeyboardInterrupt:  # SIGTERM/SIGINT: the normal way to stop a stream
        stop.set()
        streamer.push_ready(final=True)
        streamer.close()
        state = streamer.state
    if ctx.json:
        output.emit_json(
            {
                "source": args.source,
                "segments_pushed": state.segments_pushed,
                "partials_pushed": state.partials_pushed,
                "restarts": state.restarts,
            }
        )
    else:
        output.line(
            f"{args.streamer}-stream {args.source}: {state.segments_pushed} file(s) archived, "
            f"{state.restarts} restart(s)"
        )
    return 0


def _push_through_spool(args: argparse.Namespace, ctx: Context) -> int | None:
    """The asynchronous way (`app/walqueue.py`): 0 once the worker acknowledged the file,
    an error when it reported one; None when it did not answer in time (this call then
    archives the file itself)."""
    from recoveryd.app.walqueue import WalQueue
    from recoveryd.errors import RecoverydError

    path = Path(args.path)
    queue = WalQueue(ctx.config, args.source, Path(args.spool))
    if args.worker:
        queue.run_worker(path.parent, jobs=max(1, args.jobs))
        return 0
    for _ in range(2):  # look, start the worker and wait, then look again
        if queue.take_ack(path):
            return 0
        error = queue.take_error(path.name)
        if error is not None:
            raise RecoverydError(f"archiving {path.name} failed: {error}")
        queue.ensure_worker(path)
        if queue.wait_for(path.name, args.wait) is None:
            return None
    return None
