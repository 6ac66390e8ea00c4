"""Restore workers for PostgreSQL snapshots in parts: how they run, fail and stop.

A worker is one `pg_restore` (or `psql`) process fed one part's stream. The
first worker that fails is the one reported: the others' processes are killed at
once and their server sessions terminated (`pg_terminate_backend` on the
sessions tagged with this restore's `application_name`), so a long index build
or COPY does not go on after the restore has failed. Later failures of the
killed workers are only consequences and are dropped.

Errors name the worker, its part and, when the tool said which entry it was
working on (`--verbose`), the table or object: `pg_restore worker 2 (part
data-2) could not restore table public.citizen into database …`. What the
server said is kept, without row contents: PostgreSQL quotes the failing row
(`Failing row contains (…)`, `COPY t, line 5: "…"`, `Key (id)=(…)`), and a
row of a population registry does not belong in a log or a state database.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from recoveryd.errors import SourceError
from recoveryd.sources.base import ClosableReader, CommandRunner, Process
from recoveryd.sources.procstream import start_tool, tool_failure
from recoveryd.sources.streamio import feed

# the entry pg_restore --verbose announces before working on it
_ENTRY = re.compile(
    r'^pg_restore: (?:processing data for table "(?P<table>.*)"'
    r"|processing (?P<blobs>BLOBS|BLOB COMMENTS|LARGE OBJECTS)"
    r"|(?:executing|creating) (?P<other>.*))$",
    re.M,
)
# pg_restore's own progress lines (`--verbose`); errors, warnings and details stay
_INFO = re.compile(r"^pg_restore: (?!error:|warning:|detail:|hint:|from TOC entry)")
_ROW_DATA = (  # what would quote a row's values in an error, and what replaces it
    (re.compile(r"(Failing row contains) \(.*"), r"\1 (…)."),
    (re.compile(r"(COPY .*?, line \d+(?:, column [^:]*)?): .*"), r"\1"),
    (re.compile(r"(Key \(.*?\))=\(.*?\)"), r"\1=(…)"),
)
_SESSIONS = " FROM pg_stat_activity WHERE application_name = :'tag' AND pid <> pg_backend_pid();\n"
_TERMINATE_SQL = (  # from PostgreSQL 14 on, waiting (up to 5 s each) until they have ended
    "SELECT current_setting('server_version_num')::int >= 140000 AS waits \\gset\n"
    "\\if :waits\n"
    f"SELECT count(pg_terminate_backend(pid, 5000)){_SESSIONS}"
    "\\else\n"
    f"SELECT count(pg_terminate_backend(pid)){_SESSIONS}"
    "\\endif\n"
)


@dataclass(frozen=True)
class RestoreCommand:
    """How to run the client tools against the destination database: `pg_restore` (and
    `psql` from the same directory, so it reads that pg_restore's scripts), the libpq
    connection string, environment and the secrets to scrub from errors."""

    source: str
    runner: CommandRunner
    pg_restore: str  # the tool, as a path or a bare name
    dsn: str
    env: dict[str, str]
    secrets: tuple[str | None, ...]
    database: str
    tmp_dir: Path | None = None
    # every session of this restore carries it, so a failure can end them all
    tag: str = field(default_factory=lambda: f"recoveryd-restore-{secrets.token_hex(6)}")

    @property
    def tool_env(self) -> dict[str, str]:
        return {**self.env, "PGAPPNAME": self.tag}

    def restore_argv(self, *args: str) -> list[str]:
        return [self.pg_restore, "--no-owner", "--exit-on-error", "--no-password",
                *args, "--dbname", self.dsn]  # fmt: skip

    def psql_argv(self, *args: str) -> list[str]:
        path = PurePosixPath(self.pg_restore)
        psql = str(path.with_name("psql")) if path.parent != PurePosixPath() else "psql"
        return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password",
                *args, "--dbname", self.dsn]  # fmt: skip


class Workers:
    """Running restore processes; the first failure kills the others, ends their server
    sessions and is the one kept (the others then fail only because they were killed)."""

    def __init__(self, cmd: RestoreCommand) -> None:
        self.cmd = cmd
        self._lock = threading.Lock()
        self._procs: list[Process] = []
        self.stopped = False
        self.first: BaseException | None = None

    def add(self, proc: Process) -> None:
        with self._lock:
            self._procs.append(proc)
            stopped = self.stopped
        if stopped:
            proc.kill()

    def fail(self, exc: BaseException) -> None:
        """Keep `exc` when it is the first failure; kill every process and end the server
        sessions they leave behind."""
        with self._lock:
            first = self.first is None
            if first:
                self.first = exc
            self.stopped = True
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()
        if first:
            self._terminate_sessions()

    def _terminate_sessions(self) -> None:
        """Best effort: a killed client's session would otherwise finish its statement (an
        index build) before noticing; the failure being reported is the one that counts."""
        cmd = self.cmd
        with contextlib.suppress(Exception):
            cmd.runner.run(
                cmd.psql_argv("-A", "-t", "-v", f"tag={cmd.tag}"),
                env=cmd.env,
                input=_TERMINATE_SQL.encode(),
                timeout=60,
            )


def run_parallel(workers: Workers, jobs: Sequence[Callable[[], None]]) -> None:
    """Run `jobs` at once; the first one that fails stops the others, and its error is
    raised once all have ended."""

    def guarded(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - kept, and raised below
            workers.fail(exc)

    with ThreadPoolExecutor(max(1, len(jobs)), thread_name_prefix="pg-restore") as pool:
        wait([pool.submit(guarded, fn) for fn in jobs])
    if workers.first is not None:
        raise workers.first


def run_worker(
    workers: Workers,
    label: str,
    argv: Sequence[str],
    stream: Callable[[], ClosableReader],
    *,
    name_entry: Callable[[str, int], str | None] | None = None,
) -> None:
    """Feed one stream through one process (`argv`); nothing when the workers have been
    stopped. On failure a SourceError names `label` and, when `name_entry(stderr, status)`
    says which, the table or object it was restoring."""
    if workers.stopped:
        return
    cmd = workers.cmd
    with contextlib.closing(stream()) as opened:
        proc = start_tool(cmd.source, cmd.runner, argv, stdin=True, env=cmd.tool_env)
        workers.add(proc)
        status = feed(proc, opened)
    if status != 0:
        stderr = proc.stderr_text()
        entry = name_entry(stderr, status) if name_entry is not None else None
        what = f" {entry}" if entry else ""
        raise tool_failure(
            cmd.source,
            label,
            status,
            clean_stderr(stderr),
            cmd.secrets,
            doing=f"could not restore{what} into database {cmd.database}",
        )


def pg_restore_entry(stderr: str, status: int) -> str | None:
    """The entry `pg_restore --verbose` was working on when it stopped (`table
    public.citizen`, `large objects`, `FK CONSTRAINT citizen citizen_region_id_fkey`), or
    None when it had not started one."""
    matches = list(_ENTRY.finditer(stderr))
    if not matches:
        return None
    found = matches[-1]
    if found["table"] is not None:
        return f"table {found['table']}"
    if found["blobs"] is not None:
        return "large objects"
    return str(found["other"])


def clean_stderr(stderr: str) -> str:
    """`stderr` without pg_restore's progress lines and without the row contents the
    server quotes in its errors."""
    lines = [ln for ln in stderr.splitlines() if not _INFO.match(ln)]
    out = "\n".join(lines)
    for pattern, repl in _ROW_DATA:
        out = pattern.sub(repl, out)
    return out


def stop_hint(database: str) -> str:
    """What to tell the operator about a database a failed restore leaves behind."""
    return (
        f"; the other workers were stopped and database {database} is left partly "
        "restored (see docs/OPERATIONS.md): drop it and restore again"
    )


def fail_clearly(exc: BaseException, database: str) -> BaseException:
    """A SourceError of a worker, with what the operator should do about the database."""
    if isinstance(exc, SourceError):
        return SourceError(f"{exc}{stop_hint(database)}")
    return exc
