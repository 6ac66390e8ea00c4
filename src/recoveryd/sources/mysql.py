"""MySQL / MariaDB: `mariadb-dump --single-transaction` streamed, restored with the client.

The dump is one InnoDB consistent-read transaction (`--single-transaction`)
with routines, triggers, events, and binary columns in hex. When binary
logging is on, `--master-data=2` (`--source-data=2` for MySQL's mysqldump)
writes the binlog position of that transaction as a comment in the head of
the stream; it is parsed before the first byte is handed out and recorded as
the consistency point (`binlog_file`, `binlog_position`). With binary logging
off, no position is recorded. The dump names no database (no `USE`), so it
restores into whichever database the destination DSN names (created when
missing).

One stream, whatever the source's `jobs`: `mariadb-dump` cannot join a
consistent snapshot opened by another connection (PostgreSQL's `pg_dump
--snapshot` has no equivalent), so several dump processes would each see a
different moment unless writes were blocked (`FLUSH TABLES WITH READ LOCK`)
for the whole dump. `mydumper` opens its workers' snapshots under one global
read lock, but the Debian release (0.10) writes only to a directory on disk,
not to a stream.

Passwords reach the tools only in a temporary `--defaults-extra-file` (0600),
never argv, never errors. A snapshot removes it as soon as the dump has written
its head (it is connected), so even a killed backup leaves no secret behind.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

from recoveryd.errors import SourceError
from recoveryd.sources.base import ByteReader, CommandRunner, Process, SourceInfo
from recoveryd.sources.dsn import MysqlDsn, parse_mysql_dsn
from recoveryd.sources.local import ToolNotFoundError
from recoveryd.sources.procstream import (
    ProcessStream,
    SecretFile,
    restore_into,
    start_tool,
    tool_failure,
)

STREAM_FORMAT = "mysqldump-sql"
DUMP_TOOLS = ("mariadb-dump", "mysqldump")
CLIENT_TOOLS = ("mariadb", "mysql")
BINLOG_TOOLS = ("mariadb-binlog", "mysqlbinlog")
_HEAD_LIMIT = 256 * 1024
_CHANGE_MASTER = re.compile(
    rb"CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',"
    rb"\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)"
)
_HEAD_END = re.compile(rb"^-- Table structure|^CREATE |^-- Dumping", re.MULTILINE)


def _option_file(password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace('"', '\\"')
    return f'[client]\npassword="{escaped}"\n'


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _quote_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def read_head(reader: ByteReader) -> tuple[bytes, dict[str, str]]:
    """Read a dump's head up to its binlog position comment (or its first table).

    Returns the bytes read (to be handed out first) and `{binlog_file, binlog_position}`,
    empty when the head holds no position.
    """
    head = bytearray()
    while len(head) < _HEAD_LIMIT:
        block = reader.read(16384)
        if not block:
            break
        head += block
        if match := _CHANGE_MASTER.search(head):
            return bytes(head), {
                "binlog_file": match.group(1).decode(),
                "binlog_position": match.group(2).decode(),
            }
        if _HEAD_END.search(head):
            break
    return bytes(head), {}


class MysqlSource:
    """A MySQL or MariaDB database named by `mysql://user@host:port/database`."""

    kind = "mysql"

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        runner: CommandRunner,
        password: str | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        self.name = name
        self._runner = runner
        self._tmp_dir = tmp_dir
        parsed = parse_mysql_dsn(dsn)
        self._password = password if password is not None else parsed.password
        self._dsn = parsed.without_password()
        if not self._dsn.database:
            raise SourceError(f"source {name}: the DSN names no database (mysql://user@host/db)")

    # -- helpers -------------------------------------------------------------

    def _pick(self, candidates: tuple[str, ...]) -> tuple[str, str]:
        """The first of `candidates` that runs: (tool, its --version line)."""
        for tool in candidates:
            try:
                status, out, _ = self._runner.run([tool, "--version"], timeout=30)
            except ToolNotFoundError:
                continue
            if status == 0:
                return tool, out.decode(errors="replace").strip()
        raise SourceError(
            f"source {self.name}: none of {', '.join(candidates)} is installed or on PATH; "
            "install the MariaDB or MySQL client tools"
        )

    def _defaults(self, password: str | None) -> SecretFile | None:
        if not password:
            return None
        return SecretFile(
            self._runner, _option_file(password), suffix=".cnf", tmp_dir=self._tmp_dir
        )

    @staticmethod
    def _base_args(tool: str, defaults: SecretFile | None, dsn: MysqlDsn) -> list[str]:
        first = [f"--defaults-extra-file={defaults.path}"] if defaults else []
        return [tool, *first, *dsn.client_args()]

    def _query(
        self, client: str, defaults: SecretFile | None, dsn: MysqlDsn, sql: str, secret: str | None
    ) -> list[str]:
        argv = [
            *self._base_args(client, defaults, dsn),
            *("--connect-timeout=30", "--batch", "--skip-column-names"),
        ]
        if dsn.database:
            argv.append(f"--database={dsn.database}")
        status, out, err = self._runner.run([*argv, "-e", sql], timeout=300)
        if status != 0:
            raise tool_failure(self.name, client, status, err, [secret], doing="could not connect")
        return out.decode(errors="replace").strip().split("\t")

    # -- snapshot ------------------------------------------------------------

    def snapshot(self) -> ProcessStream:
        """Start the dump; the binlog position (when binary logging is on) is in `info`."""
        client, _ = self._pick(CLIENT_TOOLS)
        dump_tool, dump_version = self._pick(DUMP_TOOLS)
        defaults = self._defaults(self._password)
        proc: Process | None = None
        try:
            version, log_bin = self._query(
                client, defaults, self._dsn, "SELECT VERSION(), @@log_bin", self._password
            )
            argv = [
                *self._base_args(dump_tool, defaults, self._dsn),
                *("--single-transaction", "--routines", "--triggers", "--events"),
                *("--hex-blob", "--quick", "--skip-dump-date"),
            ]
            if log_bin == "1":
                mariadb = "MariaDB" in dump_version
                argv.append("--master-data=2" if mariadb else "--source-data=2")
            argv.append(str(self._dsn.database))
            proc = start_tool(self.name, self._runner, argv)
            # The dump's first bytes come once it is connected: its option file is no
            # longer needed, and a crash (SIGKILL) later leaves no secret behind.
            head, consistency = read_head(proc)
        except BaseException:
            if proc is not None:
                proc.kill()
            if defaults is not None:
                defaults.remove()
            raise
        if defaults is not None:
            defaults.remove()
        info = SourceInfo(
            kind=self.kind,
            stream_format=STREAM_FORMAT,
            engine_version=f"MariaDB {version}" if "MariaDB" in version else f"MySQL {version}",
            consistency=consistency,
            extra={"database": str(self._dsn.database), "tool_version": dump_version},
        )

        return ProcessStream(
            source=self.name,
            tool=dump_tool,
            proc=proc,
            info=info,
            secrets=[self._password],
            head=head,
        )

    # -- binary logs ---------------------------------------------------------

    def read_binlogs(self, directory: Path, first: str | None) -> tuple[Process, SecretFile | None]:
        """Start copying the server's binary logs, from `first` (else the oldest the
        server has) on, into `directory` as they are written (`--raw --stop-never`). It
        ends when the connection does; the caller removes the option file afterwards."""
        binlog, _ = self._pick(BINLOG_TOOLS)
        defaults = self._defaults(self._password)
        server = MysqlDsn(
            self._dsn.user, self._dsn.host, self._dsn.port, None, socket=self._dsn.socket
        )
        try:
            if first is None:
                client, _ = self._pick(CLIENT_TOOLS)
                first = self._query(client, defaults, server, "SHOW BINARY LOGS", self._password)[
                    0
                ].split("\n")[0]
            proc = start_tool(
                self.name,
                self._runner,
                [
                    *self._base_args(binlog, defaults, server),
                    *("--read-from-remote-server", "--raw", "--stop-never"),
                    f"--result-file={directory}/",
                    first,
                ],
            )
        except BaseException:
            if defaults is not None:
                defaults.remove()
            raise
        return proc, defaults

    def replay_binlogs(
        self,
        files: Sequence[Path],
        *,
        start_position: str,
        stop_datetime: str,
        database: str,
        dest: str,
        password: str | None = None,
    ) -> None:
        """Apply the events of `database` in the binary logs `files` (local, in order),
        from `start_position` in the first up to (excluding) `stop_datetime` (local time,
        whole seconds), to the database of `dest` (renamed to it when it differs)."""
        binlog, _ = self._pick(BINLOG_TOOLS)
        client, _ = self._pick(CLIENT_TOOLS)
        target = parse_mysql_dsn(dest)
        secret = password or target.password or self._password
        target = target.without_password()
        new = str(target.database or database)
        argv = [
            binlog,
            f"--start-position={start_position}",
            f"--stop-datetime={stop_datetime}",
            f"--database={database}",
            *([f"--rewrite-db={database}->{new}"] if new != database else []),
            *map(str, files),
        ]
        defaults = self._defaults(secret)
        try:
            events = start_tool(self.name, self._runner, argv)
            restore_into(
                self.name,
                self._runner,
                [*self._base_args(client, defaults, target), "--batch", "--database", new],
                events,
                tool=client,
                database=new,
                secrets=[secret, self._password],
            )
            if events.wait(60) != 0:
                raise tool_failure(
                    self.name, binlog, 1, events.stderr_text(), [secret], doing="could not read"
                )
        finally:
            if defaults is not None:
                with contextlib.suppress(Exception):
                    defaults.remove()

    # -- restore -------------------------------------------------------------

    def restore(
        self,
        stream: ByteReader,
        dest: str,
        info: SourceInfo,
        *,
        password: str | None = None,
    ) -> None:
        """Load the dump into the database of `dest` (created when missing, and dropped again
        when the load fails part way) with the client.

        `password` (else one inside `dest`, else this source's) authenticates to `dest`.
        """
        if info.stream_format != STREAM_FORMAT:
            raise SourceError(f"source {self.name}: cannot restore a {info.stream_format} stream")
        target = parse_mysql_dsn(dest)
        secret = password or target.password or self._password
        target = target.without_password()
        database = target.database
        if not database:
            raise SourceError(f"source {self.name}: restore destination names no database")
        client, _ = self._pick(CLIENT_TOOLS)
        defaults = self._defaults(secret)
        try:
            server = MysqlDsn(target.user, target.host, target.port, None, socket=target.socket)
            quoted = _quote_ident(database)
            existed = self._query(
                client,
                defaults,
                server,
                "SELECT COUNT(*) FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME = {_quote_string(database)}",
                secret,
            ) != ["0"]
            self._query(client, defaults, server, f"CREATE DATABASE IF NOT EXISTS {quoted}", secret)
            argv = [*self._base_args(client, defaults, target), "--batch", "--database", database]
            try:
                restore_into(
                    self.name,
                    self._runner,
                    argv,
                    stream,
                    tool=client,
                    database=database,
                    secrets=[secret, self._password],
                )
            except BaseException:
                # the SQL dump cannot load in one transaction (DDL commits): a database this
                # restore created is dropped again, so a half-loaded one never looks restored
                if not existed:
                    with contextlib.suppress(Exception):
                        self._query(client, defaults, server, f"DROP DATABASE {quoted}", secret)
                raise
        finally:
            if defaults is not None:
                with contextlib.suppress(Exception):
                    defaults.remove()
