"""The audit log: who did what, when, with what result (docs/OPERATIONS.md §5).

Append-only and hash-chained (`recoveryd.chain.HashChain`) at
`state_dir/audit.jsonl`: one record per CLI command and per daemon job, with
the OS user, the command, its arguments with secrets removed (`secrets.sanitize_args`;
every record passes the one redactor), and the result.
Every command that changes something is audited (creating `state_dir` when
needed); a read-only command (`READ_ONLY_COMMANDS`) is audited only where
`state_dir` already exists, so validating a configuration before its
directories exist needs no writable state dir and leaves nothing behind.
Editing or deleting a record breaks the chain; `recoveryd audit verify` says where.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recoveryd.chain import ChainStatus, HashChain
from recoveryd.errors import ExitCode, RecoverydError
from recoveryd.observe import get_logger
from recoveryd.secrets import redact, redact_tree, sanitize_args
from recoveryd.state import iso, utcnow

AUDIT_FILE = "audit.jsonl"
READ_ONLY_COMMANDS = frozenset(
    {
        "config check",
        "snapshots",
        "status",
        "drill validate",
        "drill list",
        "report",
        "audit",
        "audit verify",
        "audit show",
    }
)
"""Commands that change nothing: audited only when `state_dir` already exists."""


@dataclass(frozen=True)
class Actor:
    user: str
    uid: int
    sudo_user: str | None
    host: str
    pid: int


def current_actor() -> Actor:
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return Actor(
        user=user,
        uid=uid,
        sudo_user=os.environ.get("SUDO_USER") or None,
        host=socket.gethostname(),
        pid=os.getpid(),
    )


class AuditLog:
    """`state_dir/audit.jsonl`: append records, verify the chain."""

    def __init__(self, state_dir: Path | str) -> None:
        self.path = Path(state_dir) / AUDIT_FILE
        self.chain = HashChain(self.path)

    def record(
        self,
        *,
        origin: str,
        command: str,
        args: Sequence[str] = (),
        result: str,
        exit_code: int | None = None,
        error: str | None = None,
        started: str | None = None,
        details: dict[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        """Append one record; `origin` is "cli" or "daemon"; `result` ok | failed | ... ."""
        who = actor or current_actor()
        rec: dict[str, Any] = {
            "type": "operation",
            "time": iso(utcnow()),
            "origin": origin,
            "user": who.user,
            "uid": who.uid,
            "host": who.host,
            "pid": who.pid,
            "command": command,
            "args": sanitize_args(args),
            "result": result,
        }
        if who.sudo_user:
            rec["sudo_user"] = who.sudo_user
        if started:
            rec["started"] = started
        if exit_code is not None:
            rec["exit_code"] = exit_code
        if error:
            rec["error"] = redact(error)
        if details:
            rec["details"] = details
        return self.chain.append(redact_tree(rec))

    def verify(self) -> ChainStatus:
        return self.chain.verify()

    def records(self) -> list[dict[str, Any]]:
        return list(self.chain.records())


def _safe_record(log: AuditLog | None, **kwargs: Any) -> bool:
    if log is None:
        return False
    try:
        log.record(origin="cli", **kwargs)
    except OSError as exc:
        get_logger(__name__).warning("audit_write_failed", path=str(log.path), error=str(exc))
        return False
    return True


def _after_record(after: Callable[[], None] | None) -> None:
    if after is None:
        return
    try:
        after()
    except Exception as exc:  # noqa: BLE001 - anchoring never changes a command's outcome
        get_logger(__name__).info("anchor_not_written", error=str(exc))


def run_command(
    ctx: Any,
    argv: Sequence[str],
    call: Callable[[], int],
    after: Callable[[], None] | None = None,
) -> int:
    """The CLI's hook: run the command, then append its audit record to the configured state_dir.

    Without a loadable configuration there is no state_dir, hence no record
    (the command itself then fails with the configuration error). A read-only
    command leaves no record (and creates no directory) where state_dir does
    not exist yet. `after` runs once a record was appended (the CLI anchors the logs'
    heads in the stores there).
    """
    command = command_of(ctx.args)

    def log_of() -> AuditLog | None:
        try:
            cfg = ctx.config
        except RecoverydError:
            return None
        state_dir = cfg.resolve_path(cfg.config.state_dir)
        if command in READ_ONLY_COMMANDS and not state_dir.is_dir():
            return None
        return AuditLog(state_dir)

    def exit_code_of(exc: BaseException) -> int:
        if isinstance(exc, RecoverydError):
            return int(exc.exit_code)
        return int(ExitCode.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.FAILED)

    started = iso(utcnow())
    try:
        code = call()
    except BaseException as exc:
        appended = _safe_record(
            log_of(),
            command=command,
            args=argv,
            started=started,
            result="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
            exit_code=exit_code_of(exc),
            error=str(exc) or type(exc).__name__,
        )
        if appended and not isinstance(exc, KeyboardInterrupt):
            _after_record(after)
        raise
    appended = _safe_record(
        log_of(),
        command=command,
        args=argv,
        started=started,
        result="ok" if code == 0 else "failed",
        exit_code=code,
    )
    if appended:
        _after_record(after)
    return code


def command_of(args: Any) -> str:
    """The command path of parsed CLI arguments: `status`, `config check`, `drill run`..."""
    name = getattr(args, "command", None)
    if not name:
        return ""
    verb = getattr(args, f"{name}_command", None)
    return f"{name} {verb}" if verb else str(name)
