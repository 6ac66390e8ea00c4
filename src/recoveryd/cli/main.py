"""Entry point: global options, one sub-command module per command, errors -> exit codes.

Each command module in `COMMANDS` exposes `register(subparsers)` which adds its
parser and sets `func=run`, and `run(args, ctx) -> int`. Modules are imported
lazily only as far as argparse needs them, so a slow import (PDF rendering)
does not slow `recoveryd status`.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence

from recoveryd import __version__, audit, observe
from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.errors import ExitCode, RecoverydError

# command name -> module under recoveryd.cli (a module may register several commands)
COMMANDS: dict[str, str] = {
    "daemon": "cmd_daemon",
    "init": "cmd_init",
    "backup": "cmd_backup",
    "snapshots": "cmd_snapshots",
    "restore": "cmd_restore",
    "verify": "cmd_verify",
    "prune": "cmd_prune",
    "copy": "cmd_copy",
    "key": "cmd_key",
    "config": "cmd_config",
    "status": "cmd_status",
    "fleet": "cmd_fleet",
    "audit": "cmd_audit",
    "drill": "cmd_drill",
    "approver": "cmd_approver",
    "report": "cmd_report",
    "incident": "cmd_incident",
    "wal-push": "cmd_wal",
    "wal-get": "cmd_wal",
    "wal-stream": "cmd_wal",
    "binlog-stream": "cmd_wal",
}

UNAUDITED_COMMANDS = frozenset({"wal-push", "wal-get"})  # wal-stream is audited
"""Called by PostgreSQL, as its own OS user, once per WAL file: the archive in the store
is their record, and a failure reaches the server's log and the archiver's statistics."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}; see `{self.prog} --help`")


class _UsageError(Exception):
    pass


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only` just that command's module (what a call of
    it needs: `wal-push` runs once per WAL segment and must start fast)."""
    parser = _Parser(
        prog="recoveryd",
        description="Disaster-recovery and backup orchestration for public-service databases.",
    )
    parser.add_argument("--version", action="version", version=f"recoveryd {__version__}")
    _add_global_options(parser, suppress_defaults=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules = [COMMANDS[only]] if only in COMMANDS else dict.fromkeys(COMMANDS.values())
    for module in modules:
        importlib.import_module(f"recoveryd.cli.{module}").register(sub)
    _accept_global_options_after_commands(parser)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """--config, --json, --log-level; on a command's parser without defaults, so that
    leaving them out there keeps what was given before the command."""

    def default_of(value: object) -> object:
        return argparse.SUPPRESS if suppress_defaults else value

    parser.add_argument(
        "--config",
        default=default_of(None),
        help="configuration file (default: $RECOVERYD_CONFIG, else /etc/recoveryd/recoveryd.yaml)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default_of(False),
        help="print one JSON document on stdout",
    )
    parser.add_argument(
        "--log-level",
        default=default_of("warning"),
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr; debug also shows tracebacks",
    )


def _accept_global_options_after_commands(parser: argparse.ArgumentParser) -> None:
    """`recoveryd status --json` means `recoveryd --json status`: every (sub)command also
    takes the global options; given there, they override those given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                _add_global_options(child, suppress_defaults=True)
                _accept_global_options_after_commands(child)


def _parse(args_list: list[str]) -> argparse.Namespace:
    """Parse with only the named command's module when the command is plain to see; else
    (or when that fails: a command name given as an option's value) with all of them."""
    named = next((a for a in args_list if not a.startswith("-") and a in COMMANDS), None)
    if named is not None:
        try:
            args = build_parser(named).parse_args(args_list)
        except _UsageError:
            pass
        else:
            if args.command == named:
                return args
    return build_parser().parse_args(args_list)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the process entry point (not a call from tests or the demo)
        install_signal_handlers()
    output.begin_command()
    as_json = "--json" in args_list
    debug = "--log-level=debug" in args_list or (
        "--log-level" in args_list
        and args_list.index("--log-level") + 1 < len(args_list)
        and args_list[args_list.index("--log-level") + 1] == "debug"
    )
    try:
        args = _parse(args_list)
        if not getattr(args, "func", None):
            if as_json:
                raise _UsageError("recoveryd: no command given; see `recoveryd --help`")
            build_parser().print_help()
            return int(ExitCode.USAGE)
        ctx = Context(args)
        # logs to stderr (the daemon reconfigures for stdout); every command is audited
        # (docs/OPERATIONS.md §5)
        observe.configure_logging(ctx.log_level, daemon=False)
        if args.command in UNAUDITED_COMMANDS:
            return int(args.func(args, ctx))
        return audit.run_command(
            ctx, args_list, lambda: int(args.func(args, ctx)), after=lambda: _anchor(ctx)
        )
    except _UsageError as exc:
        return _fail(as_json, "usage", str(exc), ExitCode.USAGE)
    except RecoverydError as exc:
        if debug:
            traceback.print_exc()
        return _fail(as_json, exc.code, exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return _fail(as_json, "interrupted", "interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.FAILED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one sentence, no traceback
        if debug:
            traceback.print_exc()
        message = (
            f"unexpected {type(exc).__name__}: {exc} (rerun with --log-level debug "
            "for the traceback, and report it)"
        )
        return _fail(as_json, "unexpected", message, ExitCode.FAILED)


def _fail(as_json: bool, code: str, message: str, exit_code: int) -> int:
    """One line on stderr; with `--json` also the error document on stdout (unless the
    command already wrote its own)."""
    output.error(message)
    if as_json:
        output.emit_error(code, message, int(exit_code))
    return int(exit_code)


def _anchor(ctx: Context) -> None:
    """The heads of the audit log, journals and incident records, anchored in the stores
    at the end of every command that appended to the audit log."""
    from recoveryd.app.anchors import write_anchors

    write_anchors(ctx.config)


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed) stop a CLI command cleanly: nothing
    left behind, exit 130. SIGINT is set too, because a command started in the background
    by a shell inherits SIGINT ignored and would otherwise run on through `kill -INT` (as
    `backup` and `drill run`, which set their own handlers, never did). The daemon replaces
    them with its own."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.default_int_handler)
