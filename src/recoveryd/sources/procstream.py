"""What the tool-based sources share: secret files, tool errors, a process as a stream.

Secrets reach dump tools only through files readable by their owner alone
(`SecretFile`: 0600, created and removed through the same CommandRunner that runs
the tool, so it also works over SSH), never through argv or error text.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from recoveryd.errors import SourceError
from recoveryd.sources.base import ByteReader, CommandRunner, Process, SourceInfo
from recoveryd.sources.local import LocalProcess, LocalRunner, ToolNotFoundError
from recoveryd.sources.streamio import feed

NOT_FOUND_STATUS = 127  # what a shell (and `env` over SSH) returns for a missing command
_MAX_ERROR_CHARS = 400
_HINTS = (  # what the operator should do, by what the tool said
    ("password authentication failed", "; check the user in dsn and the password_file"),
    ("(using password:", "; check the user in dsn and the password_file"),
    ("RELOAD privilege", "; grant RELOAD and BINLOG MONITOR to the backup user"),
    (
        "Access denied",
        "; grant the backup user SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD",
    ),
    ("no password supplied", "; set password_file for this source"),
    ("Unknown database", "; check the database named in dsn"),
    ("FATAL:  database", "; check the dbname in dsn"),
    ("Connection refused", "; check host and port in dsn and that the server runs"),
    ("Can't connect", "; check host and port in dsn and that the server runs"),
    ("could not translate host name", "; check the host in dsn"),
    ("permission denied for", "; grant the backup role read access (e.g. pg_read_all_data)"),
    (
        "IN ACCESS SHARE MODE",
        "; another session holds a lock on that table (see pg_locks); the dump waited "
        "lock_wait_timeout for it",
    ),
    ("terminating connection due to administrator", "; the database server restarted"),
    ("server closed the connection unexpectedly", "; the database server restarted or crashed"),
)


class SecretFile:
    """A 0600 file holding `content` where `runner` runs commands; `remove()` deletes it.

    Locally it is made in `tmp_dir` (default: the system temp dir); remotely by `mktemp`.
    """

    def __init__(
        self, runner: CommandRunner, content: str, *, suffix: str = "", tmp_dir: Path | None = None
    ) -> None:
        self._runner = runner
        self._removed = False
        self.path: str
        if isinstance(runner, LocalRunner):
            fd, path = tempfile.mkstemp(
                prefix="recoveryd-", suffix=suffix, dir=tmp_dir
            )  # mode 0600
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(content)
            self.path = path
            return
        status, out, err = runner.run(["mktemp", "-t", f"recoveryd-XXXXXXXX{suffix}"], timeout=30)
        if status != 0:
            raise SourceError(f"cannot create a temporary file on {runner.description}: {err}")
        self.path = out.decode().strip()
        status, _, err = runner.run(
            ["cp", "/dev/stdin", self.path], input=content.encode(), timeout=30
        )
        if status != 0:
            self.remove()
            raise SourceError(f"cannot write a temporary file on {runner.description}: {err}")

    def remove(self) -> None:
        """Delete the file (idempotent, never raises)."""
        if self._removed:
            return
        self._removed = True
        if isinstance(self._runner, LocalRunner):
            with contextlib.suppress(FileNotFoundError):
                Path(self.path).unlink()
            return
        with contextlib.suppress(Exception):
            self._runner.run(["rm", "-f", self.path], timeout=30)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def tool_failure(
    source: str,
    tool: str,
    status: int,
    stderr: str,
    secrets: Iterable[str | None] = (),
    *,
    doing: str = "failed",
) -> SourceError:
    """One sentence naming the source and the tool, with the tool's last words."""
    if status == NOT_FOUND_STATUS and ("not found" in stderr or "No such file" in stderr):  # ssh
        return SourceError(
            f"source {source}: {tool} is not installed or not on PATH; install the client tools"
        )
    lines = [
        ln.strip()
        for ln in scrub(stderr, secrets).splitlines()
        if ln.strip() and "password retrieved from file" not in ln
    ]
    detail = " / ".join(lines[-3:])[-_MAX_ERROR_CHARS:] if lines else "no error output"
    how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
    hint = next((fix for pattern, fix in _HINTS if pattern in detail), "")
    return SourceError(f"source {source}: {tool} {doing} ({how}): {detail}{hint}")


def start_tool(
    source: str,
    runner: CommandRunner,
    argv: Sequence[str],
    *,
    stdin: bool = False,
    env: dict[str, str] | None = None,
) -> Process:
    """`runner.start`, with a missing tool reported as an error naming the source."""
    try:
        return runner.start(argv, env=env, stdin=stdin)
    except ToolNotFoundError as exc:
        raise SourceError(
            f"source {source}: {exc.tool} is not installed or not on PATH; install the client tools"
        ) from exc


def restore_into(
    source: str,
    runner: CommandRunner,
    argv: Sequence[str],
    stream: ByteReader,
    *,
    tool: str,
    database: str,
    secrets: Iterable[str | None] = (),
    env: dict[str, str] | None = None,
) -> None:
    """Start the restore tool `argv` and feed it `stream`; SourceError naming the source,
    the tool and `database` (with the tool's last words) unless it exits 0."""
    proc = start_tool(source, runner, argv, stdin=True, env=env)
    status = feed(proc, stream)
    if status != 0:
        raise tool_failure(
            source,
            tool,
            status,
            proc.stderr_text(),
            secrets,
            doing=f"could not restore into database {database}",
        )


class ProcessStream:
    """A dump tool's stdout as a SnapshotReader; `cleanup` runs once at the end."""

    def __init__(
        self,
        *,
        source: str,
        tool: str,
        proc: Process,
        info: SourceInfo,
        secrets: Sequence[str | None] = (),
        head: bytes = b"",
        cleanup: Callable[[bool], None] | None = None,
        ok_statuses: tuple[int, ...] = (0,),
    ) -> None:
        self.info = info
        self._source = source
        self._tool = tool
        self._proc = proc
        self._secrets = secrets
        self._head = head
        self._cleanup = cleanup
        self._ok_statuses = ok_statuses
        self._done = False
        self.exit_status: int | None = None  # the tool's, once finish() has run

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                out, self._head = self._head, b""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        if self._done:
            return b""
        return self._proc.read(size)

    def readinto(self, buf: memoryview, /) -> int:
        """Like `read(len(buf))` into `buf`; a local tool's pipe is read into it directly."""
        if not self._head and not self._done and isinstance(self._proc, LocalProcess):
            return self._proc.readinto(buf)
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def finish(self) -> None:
        """Wait for the tool; SourceError naming the source unless it exited with an
        accepted status (0, unless the tool documents others as success)."""
        if self._done:
            return
        try:
            while self._proc.read(65536):
                pass  # a caller that stopped early still gets the real exit status
            status = self._proc.wait()
            self.exit_status = status
            if status not in self._ok_statuses:
                raise tool_failure(
                    self._source, self._tool, status, self._proc.stderr_text(), self._secrets
                )
        except BaseException:
            self._end(ok=False)
            raise
        self._end(ok=True)

    def abort(self) -> None:
        if self._done:
            return
        with contextlib.suppress(Exception):
            self._proc.kill()
        self._end(ok=False)

    def _end(self, *, ok: bool) -> None:
        if self._done:
            return
        self._done = True
        if self._cleanup is not None:
            self._cleanup(ok)
