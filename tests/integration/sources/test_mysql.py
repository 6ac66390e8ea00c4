"""MySQL/MariaDB source against a real MariaDB server on loopback."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from recoveryd.errors import SourceError
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.mysql import STREAM_FORMAT, MysqlSource
from tests.fixtures.mariadb import MariadbServer, populate_registry_mysql, table_checksums_mysql
from tests.integration.sources.helpers import (
    FailingAfter,
    children_named,
    cmdlines_containing,
    read_all,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def legal_db(mariadb_server: MariadbServer) -> str:
    """A populated registry database."""
    db = mariadb_server.create_database("legal_entities")
    populate_registry_mysql(mariadb_server, db, 3000)
    return db


@pytest.fixture(scope="module")
def larger_than_a_pipe_db(mariadb_server: MariadbServer) -> str:
    """A database whose dump (about 8 MiB) is many times the source's pipe buffer, so a
    mariadb-dump whose reader has taken only its first bytes is still running, blocked on
    write."""
    db = mariadb_server.create_database("larger_than_a_pipe")
    mariadb_server.sql(
        db,
        "CREATE TABLE filing ENGINE=InnoDB AS SELECT seq AS id, REPEAT(MD5(seq), 64) AS body"
        " FROM seq_1_to_4000",
    )
    return db


def _source(server: MariadbServer, db: str, **kw: object) -> MysqlSource:
    return MysqlSource(
        "legal-entities",
        server.dsn(db),
        runner=LocalRunner(),
        password=server.password,
        **kw,  # type: ignore[arg-type]
    )


def test_round_trip_restores_identical_tables(mariadb_server: MariadbServer, legal_db: str) -> None:
    """A dump restored into a new database has the same rows in every table, plus its
    view, trigger and function; the binlog position and server version are recorded."""
    reader = _source(mariadb_server, legal_db).snapshot()
    data = read_all(reader)
    info = reader.info
    assert info.stream_format == STREAM_FORMAT
    assert info.engine_version is not None and "MariaDB" in info.engine_version
    assert info.consistency["binlog_file"].startswith("binlog.")
    status = mariadb_server.sql(None, "SHOW MASTER STATUS")[0]
    assert int(info.consistency["binlog_position"]) <= int(status[1])
    assert "MariaDB" in info.extra["tool_version"]

    mariadb_server.drop_database("legal_restored")
    _source(mariadb_server, legal_db).restore(
        io.BytesIO(data),
        mariadb_server.admin_dsn("legal_restored"),
        info,
        password=mariadb_server.admin_password,
    )
    assert table_checksums_mysql(mariadb_server, "legal_restored") == table_checksums_mysql(
        mariadb_server, legal_db
    )
    assert mariadb_server.sql("legal_restored", "SELECT count(*) > 0 FROM adult_citizen") == [(1,)]
    assert mariadb_server.sql("legal_restored", "SELECT age_of('2000-01-01') > 20") == [(1,)]
    mariadb_server.sql("legal_restored", "UPDATE citizen SET notes = 'x' WHERE id = 1")
    assert mariadb_server.sql("legal_restored", "SELECT version FROM citizen WHERE id = 1") == [
        (2,)
    ]


def test_rows_committed_after_the_dump_started_are_not_in_it(
    mariadb_server: MariadbServer,
) -> None:
    """The dump is one consistent transaction: rows changed after `snapshot()` returned
    (the binlog position recorded) do not appear in the stream."""
    db = mariadb_server.create_database("legal_consistency")
    populate_registry_mysql(mariadb_server, db, 3000)
    reader = _source(mariadb_server, db).snapshot()
    try:
        mariadb_server.sql(db, "UPDATE citizen SET given_name = 'CHANGED' WHERE id <= 2999")
        mariadb_server.sql(db, "DELETE FROM registry_event")
        data = read_all(reader)
    finally:
        reader.abort()
    mariadb_server.drop_database("legal_consistency_restored")
    _source(mariadb_server, db).restore(
        io.BytesIO(data),
        mariadb_server.admin_dsn("legal_consistency_restored"),
        reader.info,
        password=mariadb_server.admin_password,
    )
    got = mariadb_server.sql(
        "legal_consistency_restored",
        "SELECT (SELECT count(*) FROM citizen WHERE given_name = 'CHANGED'),"
        " (SELECT count(*) FROM registry_event) > 0",
    )
    assert got == [(0, 1)]


def test_password_is_never_on_a_command_line_and_option_file_is_removed(
    mariadb_server: MariadbServer, larger_than_a_pipe_db: str, tmp_path: Path
) -> None:
    """While the dump runs no argv holds the password, and the option file holding it is
    already gone (so a backup killed now leaves no secret on disk)."""
    reader = _source(mariadb_server, larger_than_a_pipe_db, tmp_dir=tmp_path).snapshot()
    try:
        reader.read(100)
        assert children_named("mariadb-dump"), "the dump had already ended: it fitted in the pipe"
        assert cmdlines_containing(mariadb_server.password) == []
        assert list(tmp_path.iterdir()) == []
        read_all(reader)
    finally:
        reader.abort()
    assert list(tmp_path.iterdir()) == []


def test_bad_password_is_a_clear_error(mariadb_server: MariadbServer, legal_db: str) -> None:
    """A wrong password fails with an error naming the source and saying access was
    denied, without echoing the password."""
    wrong = "wrong-Pass-987"
    src = MysqlSource(
        "legal-entities", mariadb_server.dsn(legal_db), runner=LocalRunner(), password=wrong
    )
    with pytest.raises(SourceError) as err:
        src.snapshot()
    assert "legal-entities" in str(err.value)
    assert "Access denied" in str(err.value)
    assert wrong not in str(err.value)


def test_missing_database_is_a_clear_error(mariadb_server: MariadbServer) -> None:
    """A DSN naming a database that does not exist fails with an error naming it."""
    with pytest.raises(SourceError, match=r"legal-entities: .*Unknown database 'nope_db'"):
        _source(mariadb_server, "nope_db").snapshot()


def test_missing_tools_are_a_clear_error(
    mariadb_server: MariadbServer, legal_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the client tools on PATH the error names the source and the tools."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match=r"legal-entities: none of mariadb, mysql is installed"):
        _source(mariadb_server, legal_db).snapshot()


def test_killed_dump_makes_finish_fail(
    mariadb_server: MariadbServer, larger_than_a_pipe_db: str
) -> None:
    """A dump killed mid-stream makes finish() raise instead of passing for complete."""
    reader = _source(mariadb_server, larger_than_a_pipe_db).snapshot()
    try:
        reader.read(100)
        dumps = children_named("mariadb-dump")
        assert dumps, "the dump had already ended: it fitted in the pipe"
        for proc in dumps:
            os.kill(proc.pid, 9)
        while reader.read(65536):
            pass
        with pytest.raises(SourceError, match=r"legal-entities: mariadb-dump .*signal 9"):
            reader.finish()
    finally:
        reader.abort()


def test_restore_of_a_broken_dump_fails_clearly(
    mariadb_server: MariadbServer, legal_db: str
) -> None:
    """A stream with invalid SQL fails restore with a SourceError naming the source."""
    reader = _source(mariadb_server, legal_db).snapshot()
    read_all(reader)
    with pytest.raises(SourceError, match=r"legal-entities: mariadb could not restore"):
        _source(mariadb_server, legal_db).restore(
            io.BytesIO(b"CREATE TABLE (broken;\n"),
            mariadb_server.admin_dsn("legal_broken"),
            reader.info,
            password=mariadb_server.admin_password,
        )


def test_a_stream_failing_part_way_leaves_no_half_loaded_database(
    mariadb_server: MariadbServer, legal_db: str
) -> None:
    """When the snapshot stream fails in the middle (a damaged chunk), the restore raises and
    the database it created is gone again: a half-loaded copy never passes for a restored one."""

    reader = _source(mariadb_server, legal_db).snapshot()
    data = read_all(reader)
    mariadb_server.drop_database("legal_partial")
    with pytest.raises(RuntimeError, match="chunk 42"):
        _source(mariadb_server, legal_db).restore(
            FailingAfter(data, len(data) * 3 // 4),
            mariadb_server.admin_dsn("legal_partial"),
            reader.info,
            password=mariadb_server.admin_password,
        )
    assert mariadb_server.sql(None, "SHOW DATABASES LIKE 'legal\\_partial'") == []
