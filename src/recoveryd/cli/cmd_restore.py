"""`recoveryd restore SNAPSHOT --to DEST`: into a DSN, a database path or a directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recoveryd import app
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.cli.progress import Reporter
from recoveryd.secrets import redact, resolve_secret


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "restore",
        help="restore a snapshot into DEST (a DSN, a database path or a directory)",
        description="Restore a snapshot into DEST (a DSN, a database path or a directory). "
        "A restore has the priority of the snapshot's source: while load shedding is in "
        "force, restores of critical sources still run (an incident needs them most); a "
        "restore whose source's priority must wait is refused (exit 5) unless --force.",
    )
    p.add_argument(
        "snapshot",
        metavar="SNAPSHOT",
        help="snapshot id or a unique prefix of it; with --time or --lsn, a PostgreSQL source",
    )
    point = p.add_mutually_exclusive_group()
    point.add_argument(
        "--time",
        metavar="T",
        help="recover SOURCE to this moment (ISO 8601; without an offset, in daemon.timezone): "
        "the newest base backup before it into the empty data directory DEST, with the "
        "settings that replay the WAL archive up to T",
    )
    point.add_argument("--lsn", metavar="LSN", help="recover SOURCE up to this WAL position")
    p.add_argument(
        "--start",
        action="store_true",
        help="with --time/--lsn on PostgreSQL: start a scratch server on DEST (127.0.0.1, "
        "--port or a free one), wait until it has recovered and promoted, print its DSN",
    )
    p.add_argument("--port", type=int, default=0, help="with --start: the scratch server's port")
    p.add_argument(
        "--replace",
        action="store_true",
        help="with --start: first stop and delete the scratch server an earlier --start "
        "left in DEST (only a directory recoveryd made as scratch)",
    )
    p.add_argument(
        "--cmd",
        metavar="PATH",
        help="with --time/--lsn: the recoveryd executable PostgreSQL runs in restore_command "
        "(default: this one; name another when the server runs it elsewhere or as a user "
        "who cannot run this one)",
    )
    p.add_argument("--to", dest="dest", required=True, metavar="DEST", help="where to restore")
    p.add_argument("--target", help="read from this target (default: the first that has it)")
    p.add_argument(
        "--password-file",
        metavar="REF",
        help="password for a database DEST: a file, env:NAME or credential:NAME "
        "(default: one in DEST, else the source's)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="restore even while load shedding holds back this source's priority",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    if args.time is not None or args.lsn is not None:
        return _to_point(args, ctx)
    password = None
    if args.password_file:
        password = resolve_secret(args.password_file, Path.cwd(), setting="--password-file")
    # SIGINT/SIGTERM/SIGHUP interrupt at once (exit 130): a restore commits nothing to the store,
    # and the sources write their destination atomically or leave it to be recreated.
    with Reporter("restore", quiet=ctx.json) as rep:
        done = app.restore(
            cfg,
            args.snapshot,
            args.dest,
            target=args.target,
            progress=rep.callback,
            password=password,
            admit=None if args.force else (lambda source: app.check_restore(cfg, source)),
        )
    if ctx.json:
        output.emit_json({"snapshot": done.id, "source": done.source, "dest": redact(args.dest)})
    else:
        output.line(f"restored snapshot {done.id[:12]} of {done.source} into {redact(args.dest)}")
    return 0


def _to_point(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.app import pitr

    cfg = ctx.config
    if args.lsn is not None:
        pitr.parse_lsn(args.lsn)
        target = pitr.RecoveryTarget(lsn=args.lsn)
    else:
        target = pitr.RecoveryTarget(time=pitr.parse_time(args.time, cfg))
    if not args.force:
        app.check_restore(cfg, args.snapshot)
    if args.replace and args.start:
        from recoveryd.app.scratch import remove_scratch

        remove_scratch(Path(args.dest))
    password = None
    if args.password_file:
        password = resolve_secret(args.password_file, Path.cwd(), setting="--password-file")
    base = pitr.restore_to_point(
        cfg, args.snapshot, target, args.dest, command=args.cmd, password=password
    )
    point = target.settings()
    dsn = None
    if args.start and base.kind == "postgresql":
        from recoveryd.app.scratch import start_scratch

        dsn = start_scratch(Path(args.dest), args.port)
    if ctx.json:
        output.emit_json(
            {
                "source": args.snapshot,
                "base_backup": base.id,
                "dest": redact(args.dest),
                "target": point,
                "dsn": dsn,
            }
        )
    else:
        when = next(iter(point.values()))
        if base.kind == "mysql":
            output.line(
                f"restored dump {base.id[:12]} of {args.snapshot} into {redact(args.dest)} "
                f"and replayed its binary logs up to {when}"
            )
        elif dsn is not None:
            output.line(
                f"restored base backup {base.id[:12]} of {args.snapshot} into {args.dest}, "
                f"recovered to {when}; the server accepts connections at: {dsn}"
            )
        else:
            output.line(
                f"restored base backup {base.id[:12]} of {args.snapshot} into {args.dest}; "
                f"start PostgreSQL on it to replay the WAL archive to {when}"
            )
    return 0
