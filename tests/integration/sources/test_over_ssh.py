"""Sources over SSH (`via_ssh`): the dump tools run on the database host through the
real SSH command runner, against a real OpenSSH server on loopback."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from recoveryd.errors import SourceError
from recoveryd.remote import SshRunner, ssh_runner
from recoveryd.sources.base import Process
from recoveryd.sources.directory import DirectorySource
from recoveryd.sources.mysql import MysqlSource
from recoveryd.sources.postgresql import PostgresSource
from tests.fixtures.mariadb import MariadbServer, populate_registry_mysql, table_checksums_mysql
from tests.fixtures.postgres import PgServer, populate_registry, table_checksums
from tests.fixtures.sshd import SshServer
from tests.integration.sources.helpers import cmdlines_containing, read_all

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(sshd_server: SshServer, tmp_path: Path) -> Iterator[SshRunner]:
    """An SSH runner logged in as root on the loopback sshd."""
    r = ssh_runner(sshd_server.host("root"), base_dir=tmp_path)
    try:
        yield r
    finally:
        r.close()


class Recording:
    """The SSH runner, recording every argv it runs."""

    def __init__(self, inner: SshRunner) -> None:
        self._inner = inner
        self.description = inner.description
        self.argvs: list[list[str]] = []

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False
    ) -> Process:
        self.argvs.append(list(argv))
        return self._inner.start(argv, env=env, stdin=stdin)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        self.argvs.append(list(argv))
        return self._inner.run(argv, env=env, timeout=timeout, input=input)


def _no_path(argv: Sequence[str], env: Mapping[str, str] | None) -> dict[str, str]:
    """Environment in which the database client tools are not found (coreutils are)."""
    if argv[0] in ("mktemp", "cp", "rm"):
        return dict(env or {})
    return {**(env or {}), "PATH": "/nonexistent"}


class NoToolsRunner:
    """The SSH runner on a host without the database client tools."""

    def __init__(self, inner: SshRunner) -> None:
        self._inner = inner
        self.description = inner.description

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False
    ) -> Process:
        return self._inner.start(argv, env=_no_path(argv, env), stdin=stdin)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        return self._inner.run(argv, env=_no_path(argv, env), timeout=timeout, input=input)


def test_postgresql_round_trip_over_ssh(pg_server: PgServer, runner: SshRunner) -> None:
    """pg_dump and its snapshot-holding psql run over SSH; the password travels in a
    remote 0600 file, never on a command line; restore runs over SSH too."""
    db = pg_server.create_database("ssh_src")
    populate_registry(pg_server.dsn(db, with_password=True), 500)
    recording = Recording(runner)
    src = PostgresSource(
        "population", pg_server.dsn(db), runner=recording, password=pg_server.password
    )
    reader = src.snapshot()
    try:
        assert cmdlines_containing(pg_server.password) == []
        secret_files = [argv[2] for argv in recording.argvs if argv[:2] == ["cp", "/dev/stdin"]]
        assert len(secret_files) == 1
        assert not Path(secret_files[0]).exists()  # removed once pg_dump was connected
        data = read_all(reader)
    finally:
        reader.abort()
    assert reader.info.consistency["lsn"]
    pg_server.drop_database("ssh_restored")
    src.restore(io.BytesIO(data), pg_server.admin_dsn("ssh_restored"), reader.info)
    assert table_checksums(pg_server.admin_dsn("ssh_restored")) == table_checksums(
        pg_server.admin_dsn(db)
    )


def test_mysql_round_trip_over_ssh(mariadb_server: MariadbServer, runner: SshRunner) -> None:
    """mariadb-dump runs over SSH with its option file on the remote host, and the binlog
    position is read from the remote stream."""
    db = mariadb_server.create_database("ssh_legal")
    populate_registry_mysql(mariadb_server, db, 300)
    src = MysqlSource(
        "legal", mariadb_server.dsn(db), runner=runner, password=mariadb_server.password
    )
    reader = src.snapshot()
    data = read_all(reader)
    assert reader.info.consistency["binlog_file"]
    mariadb_server.drop_database("ssh_legal_restored")
    src.restore(
        io.BytesIO(data),
        mariadb_server.admin_dsn("ssh_legal_restored"),
        reader.info,
        password=mariadb_server.admin_password,
    )
    assert table_checksums_mysql(mariadb_server, "ssh_legal_restored") == (
        table_checksums_mysql(mariadb_server, db)
    )


def test_directory_over_ssh(runner: SshRunner, tmp_path: Path) -> None:
    """A directory on the SSH host is tarred there and restored here."""
    (tmp_path / "tiles").mkdir()
    (tmp_path / "tiles" / "0.png").write_bytes(b"\x89PNG" * 1000)
    src = DirectorySource("geo", str(tmp_path / "tiles"), runner=runner)
    reader = src.snapshot()
    data = read_all(reader)
    src.restore(io.BytesIO(data), str(tmp_path / "out"), reader.info)
    assert (tmp_path / "out" / "0.png").read_bytes() == b"\x89PNG" * 1000


def test_missing_tools_on_the_remote_host_are_a_clear_error(
    pg_server: PgServer, runner: SshRunner
) -> None:
    """When the SSH host lacks the client tools the error names the source and says so."""
    src = PostgresSource(
        "population",
        pg_server.dsn("postgres"),
        runner=NoToolsRunner(runner),
        password=pg_server.password,
    )
    with pytest.raises(SourceError, match=r"source population: psql is not installed"):
        src.snapshot()
