"""PostgreSQL: a consistent logical snapshot streamed by `pg_dump`, restored by `pg_restore`.

Consistency point. A `psql` coprocess (started through the CommandRunner, so
it works over SSH too) opens `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`
and reads `pg_export_snapshot()` with the WAL position at that instant
(`pg_current_wal_lsn()`, or `pg_last_wal_replay_lsn()` on a standby). `pg_dump
--snapshot=<id>` then dumps exactly that snapshot, and the coprocess keeps the
transaction open until the dump has ended. The manifest records the snapshot
id, the LSN, the server version and the pg_dump version. With `jobs` above 1,
several pg_dump processes dump that snapshot as parts (pre-data, the table data
spread over `jobs` parts, post-data), restored in parallel: see `pgparallel`.

Format. The custom format with compression off (`-Fc -Z0`): one sequential
stream (no temporary file: `pg_restore` reads it from a pipe, with
`--exit-on-error` in one transaction, so a restore that fails part way leaves
no table behind), with table data laid out row after row as COPY text, so
content-defined chunks of unchanged row ranges are byte-identical between
snapshots and deduplicate; the repository compresses each chunk with zstd.
The share of a second dump's bytes in new chunks, by format and chunk size, is
in docs/PERFORMANCE.md ("Deduplication"): `-Fc -Z0` with 1 MiB chunks is what
keeps a registry's typical change small while keeping the object count low.
Compressed custom dumps defeat deduplication; plain SQL dedups as well but
restores only through `psql`, without selective restore. The tar format
buffers each table in a temporary file before writing it.

Locks. pg_dump takes a share lock on every table it dumps; a session holding an
exclusive lock (a long `ALTER TABLE`, an explicit `LOCK TABLE`) would make it wait
forever, and the backup with it. pg_dump gets `--lock-wait-timeout` (the source's
`lock_wait_timeout`, 5 minutes by default) and fails clearly instead.

Passwords come from the caller (`password_file` / `password` resolved by
`resolve_secret`) or from the DSN, and reach the tools only through a
temporary PGPASSFILE (0600), never argv, never errors. A snapshot removes the
file as soon as pg_dump has produced its first bytes (it is connected, and
reconnects never), so even a killed backup leaves no secret behind; a restore
removes it at the end.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from recoveryd.errors import SourceError
from recoveryd.sources import pgparallel, pgphysical, pgrestore, pgworkers
from recoveryd.sources.base import (
    ByteReader,
    ClosableReader,
    CommandRunner,
    MultiStream,
    Process,
    SourceInfo,
)
from recoveryd.sources.dsn import format_pg_dsn, split_pg_password
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.procstream import (
    ProcessStream,
    SecretFile,
    restore_into,
    scrub,
    start_tool,
    tool_failure,
)

STREAM_FORMAT = "pg_dump-custom"
DEBIAN_PG_LIB = Path("/usr/lib/postgresql")
_CONNECT_TIMEOUT = "30"
_HEAD_BLOCK = 64 * 1024
_SNAPSHOT_SQL = (
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n"
    "SELECT pg_export_snapshot(),"
    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,"
    " pg_is_in_recovery(), current_setting('server_version'), current_database();\n"
)
_CREATE_DB_SQL = (
    "SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS "
    "(SELECT 1 FROM pg_database WHERE datname = :'db') \\gexec\n"
)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def _passfile_line(password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


class PostgresSource:
    """A PostgreSQL database named by a libpq DSN (keyword string or URI)."""

    kind = "postgresql"

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        runner: CommandRunner,
        password: str | None = None,
        bin_dirs: Sequence[str] | None = None,
        tmp_dir: Path | None = None,
        lock_wait_timeout: float = 300.0,
        mode: Literal["logical", "physical"] = "logical",
        jobs: int = 1,
    ) -> None:
        self.name = name
        self.mode = mode
        self.jobs = max(1, jobs)  # > 1: dump and restore as parts (`pgparallel`)
        self._lock_wait_ms = max(1, round(lock_wait_timeout * 1000))
        self._runner = runner
        self._tmp_dir = tmp_dir
        self._params, dsn_password = split_pg_password(dsn)
        self._password = password if password is not None else dsn_password
        self._params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
        self._params.setdefault("application_name", "recoveryd")
        self._bin_dirs = (
            list(bin_dirs)
            if bin_dirs is not None
            else sorted(map(str, DEBIAN_PG_LIB.glob("*/bin")), key=_version_key, reverse=True)
        )

    # -- tools ---------------------------------------------------------------

    def _tool(self, name: str) -> str:
        """Local: PATH, then the newest /usr/lib/postgresql/<v>/bin; remote: the bare name."""
        if isinstance(self._runner, LocalRunner):
            return self._runner.which(name, self._bin_dirs) or name
        return name

    def _secrets(self) -> list[str | None]:
        return [self._password]

    def _env(self, passfile: SecretFile | None) -> dict[str, str]:
        env = {"PGCONNECT_TIMEOUT": _CONNECT_TIMEOUT}
        if passfile is not None:
            env["PGPASSFILE"] = passfile.path
        return env

    def _passfile(self, password: str | None) -> SecretFile | None:
        if not password:
            return None
        return SecretFile(
            self._runner, _passfile_line(password), suffix=".pgpass", tmp_dir=self._tmp_dir
        )

    def tool_version(self, tool: str = "pg_dump") -> str | None:
        """`pg_dump --version` as printed, or None when it cannot be run."""
        with contextlib.suppress(SourceError):
            status, out, _ = self._runner.run([self._tool(tool), "--version"], timeout=30)
            if status == 0:
                return out.decode(errors="replace").strip()
        return None

    # -- snapshot ------------------------------------------------------------

    def snapshot(self) -> ProcessStream | MultiStream:
        """Export a snapshot in a coprocess and stream `pg_dump` at exactly that snapshot
        (`mode: logical`; with `jobs` > 1 as several parts, see `pgparallel`), or stream
        a base backup of the cluster (`mode: physical`)."""
        if self.mode == "physical":
            return self._base_backup()
        passfile = self._passfile(self._password)
        env = self._env(passfile)
        conninfo = format_pg_dsn(self._params)
        holder: Process | None = None
        dump: Process | None = None
        try:
            holder = start_tool(
                self.name,
                self._runner,
                [
                    *(self._tool("psql"), "-X", "-q", "-A", "-t", "-F", "|"),
                    *("-v", "ON_ERROR_STOP=1", "--no-password", "--dbname", conninfo),
                ],
                stdin=True,
                env=env,
            )
            fields = self._export_snapshot(holder)
            info = self._info(fields, self.tool_version())
            argv = [
                *(self._tool("pg_dump"), "--format=custom", "--compress=0", "--no-password"),
                f"--lock-wait-timeout={self._lock_wait_ms}",
                *(f"--snapshot={fields[0]}", "--dbname", conninfo),
            ]
            if self.jobs > 1:
                plan = pgparallel.plan_parts(pgparallel.read_tables(self.name, holder), self.jobs)
                cmd = pgparallel.DumpCommand(
                    self.name, self._runner, tuple(argv), env, tuple(self._secrets()), info
                )
                parts = pgparallel.start_parts(cmd, plan)
            else:
                dump = start_tool(self.name, self._runner, argv, env=env)
                # pg_dump writes its first bytes once connected: the password file is no
                # longer needed, and a crash (SIGKILL) later leaves no secret behind.
                head = dump.read(_HEAD_BLOCK)
        except BaseException:
            for proc in (dump, holder):
                if proc is not None:
                    proc.kill()
            if passfile is not None:
                passfile.remove()
            raise
        if passfile is not None:
            passfile.remove()
        held = holder

        def cleanup(ok: bool) -> None:
            try:
                if ok:
                    with contextlib.suppress(OSError):
                        held.write(b"COMMIT;\n")
                    held.close_stdin()
                    try:
                        held.wait(30)
                    except TimeoutError:
                        held.kill()
                else:
                    held.kill()
            finally:
                if passfile is not None:
                    passfile.remove()  # idempotent; already gone unless pg_dump wrote nothing

        if self.jobs > 1:
            return MultiStream(replace(info, extra={**info.extra, "jobs": str(self.jobs)}),
                               parts, cleanup)  # fmt: skip
        assert dump is not None  # noqa: S101 - started above when jobs == 1
        return ProcessStream(
            source=self.name,
            tool="pg_dump",
            proc=dump,
            info=info,
            secrets=self._secrets(),
            head=head,
            cleanup=cleanup,
        )

    def _info(self, fields: list[str], tool_version: str | None) -> SourceInfo:
        snapshot_id, lsn, in_recovery, version, database = fields
        return SourceInfo(
            kind=self.kind,
            stream_format=STREAM_FORMAT,
            engine_version=f"PostgreSQL {version}",
            consistency={
                "snapshot_id": snapshot_id,
                "lsn": lsn,
                "standby": "true" if in_recovery == "t" else "false",
            },
            extra={"database": database, "tool_version": tool_version or "unknown"},
        )

    def _base_backup(self) -> ProcessStream:
        """`pg_basebackup` as one tar stream (see `pgphysical`)."""
        passfile = self._passfile(self._password)
        env = self._env(passfile)
        proc: Process | None = None
        try:
            status, out, err = self._run_psql(
                self._params,
                "SELECT current_setting('server_version') || '|' ||"
                " pg_size_bytes(current_setting('wal_segment_size'));\n",
                env,
            )
            if status != 0:
                raise tool_failure(
                    self.name, "psql", status, err, self._secrets(), doing="could not connect"
                )
            tool_version = self.tool_version("pg_basebackup")
            argv = pgphysical.basebackup_argv(
                self._tool("pg_basebackup"), format_pg_dsn(self._params)
            )
            proc = start_tool(self.name, self._runner, argv, env=env)
            head = proc.read(_HEAD_BLOCK)  # connected: the password file can go
        except BaseException:
            if proc is not None:
                proc.kill()
            if passfile is not None:
                passfile.remove()
            raise
        if passfile is not None:
            passfile.remove()
        version, _, seg_size = out.decode(errors="replace").strip().partition("|")
        info = SourceInfo(
            kind=self.kind,
            stream_format=pgphysical.STREAM_FORMAT,
            engine_version=f"PostgreSQL {version}",
            extra={
                "mode": "physical",
                "tool_version": tool_version or "unknown",
                "wal_segment_size": seg_size,
            },
        )
        return pgphysical.BaseBackupStream(
            source=self.name,
            proc=proc,
            info=info,
            secrets=self._secrets(),
            head=head,
            cleanup=lambda ok: None,
        )

    def receive_wal(self, directory: Path, slot: str) -> tuple[Process, SecretFile | None]:
        """Start `pg_receivewal` streaming into `directory` from replication slot `slot`
        (created when missing), flushing each write (`--synchronous`); it ends when the
        connection does (the caller restarts it). Returns the process and its password
        file, which the caller removes once the process has ended."""
        passfile = self._passfile(self._password)
        env = self._env(passfile)
        tool = self._tool("pg_receivewal")
        conninfo = format_pg_dsn(self._params)
        try:
            status, _, err = self._runner.run(
                [tool, "--slot", slot, "--create-slot", "--if-not-exists", "--no-password",
                 "--dbname", conninfo],
                env=env,
                timeout=60,
            )  # fmt: skip
            if status != 0:
                raise tool_failure(
                    self.name, "pg_receivewal", status, err, self._secrets(),
                    doing=f"could not create replication slot {slot}",
                )  # fmt: skip
            proc = start_tool(
                self.name,
                self._runner,
                [tool, "--directory", str(directory), "--slot", slot, "--synchronous",
                 "--no-loop", "--status-interval=1", "--no-password", "--dbname", conninfo],
                env=env,
            )  # fmt: skip
        except BaseException:
            if passfile is not None:
                passfile.remove()
            raise
        return proc, passfile

    def _export_snapshot(self, holder: Process) -> list[str]:
        """Send the snapshot query; its one answer line split into 5 fields."""
        with contextlib.suppress(OSError):
            holder.write(_SNAPSHOT_SQL.encode())
        line = bytearray()
        while not line.endswith(b"\n"):
            block = holder.read(1)
            if not block:
                break
            line += block
        fields = line.decode(errors="replace").strip().split("|")
        if len(fields) == 5 and all(fields[:2]):
            return fields
        holder.close_stdin()
        try:
            status = holder.wait(30)
        except TimeoutError:
            holder.kill()
            status = -9
        raise tool_failure(
            self.name,
            "psql",
            status if status != 0 else 1,
            holder.stderr_text() or "unexpected answer to the snapshot query",
            self._secrets(),
            doing="could not open a snapshot",
        )

    # -- restore -------------------------------------------------------------

    def restore(
        self,
        stream: ByteReader,
        dest: str,
        info: SourceInfo,
        *,
        password: str | None = None,
    ) -> None:
        """Restore into the database of `dest` (created when missing) with `pg_restore`;
        a base backup into the empty data directory `dest`.

        `password` (else one inside `dest`, else this source's) authenticates to `dest`.
        """
        if info.stream_format == pgphysical.STREAM_FORMAT:
            pgphysical.restore_base_backup(self.name, self._runner, stream, dest, info)
            return
        if info.stream_format != STREAM_FORMAT:
            raise SourceError(
                f"source {self.name}: cannot restore a {info.stream_format} stream with pg_restore"
            )
        with self._destination(dest, password) as (params, secret, env):
            restore_into(
                self.name,
                self._runner,
                [
                    *(self._tool("pg_restore"), "--no-owner", "--exit-on-error", "--no-password"),
                    # all or nothing: a stream failing part way (a damaged chunk) rolls back
                    "--single-transaction",
                    *("--dbname", format_pg_dsn(params)),
                ],
                stream,
                tool="pg_restore",
                database=params["dbname"],
                secrets=[secret, self._password],
                env=env,
            )

    def restore_parts(
        self,
        open_part: Callable[[str], ClosableReader],
        names: Sequence[str],
        dest: str,
        info: SourceInfo,
        *,
        password: str | None = None,
    ) -> None:
        """Restore a snapshot made of parts (`jobs` > 1) into the database of `dest`:
        pre-data, then the data parts at once (one transaction per table), then post-data
        over `jobs` workers (see `pgrestore`)."""
        if info.stream_format != STREAM_FORMAT:
            raise SourceError(
                f"source {self.name}: cannot restore a {info.stream_format} stream with pg_restore"
            )
        with self._destination(dest, password) as (params, secret, env):
            cmd = pgworkers.RestoreCommand(
                source=self.name,
                runner=self._runner,
                pg_restore=self._tool("pg_restore"),
                dsn=format_pg_dsn(params),
                env=env,
                secrets=(secret, self._password),
                database=params["dbname"],
                tmp_dir=self._tmp_dir,
            )
            pgrestore.restore_parts(cmd, open_part, names, self.jobs)

    @contextlib.contextmanager
    def _destination(
        self, dest: str, password: str | None
    ) -> Iterator[tuple[dict[str, str], str | None, dict[str, str]]]:
        """The destination's connection parameters, password and tool environment, with
        its database created when missing; the password file is removed at the end."""
        params, dest_password = split_pg_password(dest)
        secret = password or dest_password or self._password
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
        database = params.get("dbname")
        if not database:
            raise SourceError(f"source {self.name}: restore destination names no dbname")
        passfile = self._passfile(secret)
        try:
            env = self._env(passfile)
            self._create_database(params, database, env, secret)
            yield params, secret, env
        finally:
            if passfile is not None:
                passfile.remove()

    def _create_database(
        self, params: dict[str, str], database: str, env: dict[str, str], secret: str | None
    ) -> None:
        admin = dict(params, dbname="postgres")
        status, _, err = self._run_psql(admin, _CREATE_DB_SQL, env, ["-v", f"db={database}"])
        if status != 0:
            raise tool_failure(
                self.name,
                "psql",
                status,
                err,
                [secret, self._password],
                doing=f"could not create database {database}",
            )

    def query(self, sql: str) -> str:
        """The text `psql` prints for one read-only query on the source's database (no
        headers, unaligned); SourceError naming the source when it cannot run."""
        passfile = self._passfile(self._password)
        try:
            status, out, err = self._run_psql(self._params, sql, self._env(passfile))
        finally:
            if passfile is not None:
                passfile.remove()
        if status != 0:
            raise tool_failure(
                self.name, "psql", status, err, self._secrets(), doing="could not query the server"
            )
        return out.decode(errors="replace").strip()

    def _run_psql(
        self, params: dict[str, str], sql: str, env: dict[str, str], extra: Sequence[str] = ()
    ) -> tuple[int, bytes, str]:
        argv = [
            *(self._tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("--no-password", *extra, "--dbname", format_pg_dsn(params)),
        ]
        try:
            return self._runner.run(argv, env=env, input=sql.encode(), timeout=300)
        except SourceError as exc:
            raise SourceError(f"source {self.name}: {scrub(str(exc), self._secrets())}") from exc
