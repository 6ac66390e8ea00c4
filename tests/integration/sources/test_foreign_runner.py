"""Sources through a CommandRunner that is not the local one (as over SSH): tools are
called by their bare names and secret files are made with `mktemp` through the runner."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from recoveryd.sources.base import Process
from recoveryd.sources.directory import DirectorySource
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.mysql import MysqlSource
from recoveryd.sources.postgresql import PostgresSource
from tests.fixtures.mariadb import MariadbServer, populate_registry_mysql, table_checksums_mysql
from tests.fixtures.postgres import PgServer, populate_registry, table_checksums
from tests.integration.sources.helpers import cmdlines_containing, read_all

pytestmark = pytest.mark.integration


class ForeignRunner:
    """Runs commands locally but is not a LocalRunner, so sources take their remote paths;
    it records every argv it is given."""

    description = "ssh test@127.0.0.1:22"

    def __init__(self) -> None:
        self._local = LocalRunner()
        self.argvs: list[list[str]] = []

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False
    ) -> Process:
        self.argvs.append(list(argv))
        return self._local.start(argv, env=env, stdin=stdin)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        self.argvs.append(list(argv))
        return self._local.run(argv, env=env, timeout=timeout, input=input)


def _secret_files(runner: ForeignRunner) -> list[Path]:
    """The secret files the source wrote through the runner (`cp /dev/stdin PATH`)."""
    return [Path(argv[2]) for argv in runner.argvs if argv[:2] == ["cp", "/dev/stdin"]]


def test_postgresql_round_trip_through_a_foreign_runner(pg_server: PgServer) -> None:
    """A PostgreSQL snapshot and restore work through a non-local runner: its secret
    file is made and removed through the runner, and no argv holds the password."""
    db = pg_server.create_database("foreign_src")
    populate_registry(pg_server.dsn(db, with_password=True), 300)
    runner = ForeignRunner()
    src = PostgresSource(
        "population", pg_server.dsn(db), runner=runner, password=pg_server.password
    )
    reader = src.snapshot()
    assert cmdlines_containing(pg_server.password) == []
    assert len(_secret_files(runner)) == 1
    assert not any(p.exists() for p in _secret_files(runner))  # gone once pg_dump connected
    data = read_all(reader)
    assert ["mktemp", "-t", "recoveryd-XXXXXXXX.pgpass"] in runner.argvs
    assert any(argv[0] == "pg_dump" for argv in runner.argvs)
    assert all(pg_server.password not in " ".join(argv) for argv in runner.argvs)
    pg_server.drop_database("foreign_restored")
    src.restore(io.BytesIO(data), pg_server.admin_dsn("foreign_restored"), reader.info)
    assert table_checksums(pg_server.admin_dsn("foreign_restored")) == table_checksums(
        pg_server.admin_dsn(db)
    )
    assert len(_secret_files(runner)) == 2
    assert not any(p.exists() for p in _secret_files(runner))


def test_mysql_snapshot_through_a_foreign_runner(mariadb_server: MariadbServer) -> None:
    """A MariaDB dump and restore work through a non-local runner with its option file
    made and removed through the runner."""
    db = mariadb_server.create_database("foreign_legal")
    populate_registry_mysql(mariadb_server, db, 300)
    runner = ForeignRunner()
    src = MysqlSource(
        "legal", mariadb_server.dsn(db), runner=runner, password=mariadb_server.password
    )
    reader = src.snapshot()
    data = read_all(reader)
    assert _secret_files(runner) and not any(p.exists() for p in _secret_files(runner))
    assert all(mariadb_server.password not in " ".join(argv) for argv in runner.argvs)
    mariadb_server.drop_database("foreign_legal_restored")
    src.restore(
        io.BytesIO(data),
        mariadb_server.admin_dsn("foreign_legal_restored"),
        reader.info,
        password=mariadb_server.admin_password,
    )
    assert table_checksums_mysql(mariadb_server, "foreign_legal_restored") == (
        table_checksums_mysql(mariadb_server, db)
    )


def test_directory_snapshot_through_a_foreign_runner(tmp_path: Path) -> None:
    """A directory is tarred by the runner's `tar` (on the remote host over SSH)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("hello")
    src = DirectorySource("geo", str(tmp_path / "src"), runner=ForeignRunner())
    reader = src.snapshot()
    data = read_all(reader)
    src.restore(io.BytesIO(data), str(tmp_path / "out"), reader.info)
    assert (tmp_path / "out" / "a.txt").read_text() == "hello"
