"""PostgreSQL source against a real PostgreSQL 15 server on loopback."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import psutil
import psycopg
import pytest

from recoveryd.errors import SourceError
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.postgresql import STREAM_FORMAT, PostgresSource
from tests.fixtures.postgres import PgServer, populate_registry, table_checksums
from tests.integration.sources.helpers import (
    FailingAfter,
    children_named,
    cmdlines_containing,
    read_all,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry_db(pg_server: PgServer) -> str:
    """A populated registry database owned by the backup role."""
    db = pg_server.create_database("src_registry")
    populate_registry(pg_server.dsn(db, with_password=True), 3000)
    return db


@pytest.fixture(scope="module")
def larger_than_a_pipe_db(pg_server: PgServer) -> str:
    """A database whose dump (about 8 MiB) is many times the source's pipe buffer, so a
    pg_dump whose reader has taken only its first bytes is still running, blocked on write."""
    db = pg_server.create_database("src_larger_than_a_pipe")
    with psycopg.connect(pg_server.dsn(db, with_password=True)) as conn:
        conn.execute(
            "CREATE TABLE filing AS SELECT g AS id, repeat(md5(g::text), 64) AS body"
            " FROM generate_series(1, 4000) AS g"
        )
    return db


def _source(pg_server: PgServer, db: str, **kw: object) -> PostgresSource:
    return PostgresSource(
        "population",
        pg_server.dsn(db),
        runner=LocalRunner(),
        password=pg_server.password,
        **kw,  # type: ignore[arg-type]
    )


def test_round_trip_restores_identical_tables(pg_server: PgServer, registry_db: str) -> None:
    """A snapshot restored into a new database has the same rows in every table, and the
    manifest data says which server version and consistency point the dump is of."""
    reader = _source(pg_server, registry_db).snapshot()
    data = read_all(reader)
    info = reader.info
    assert info.stream_format == STREAM_FORMAT
    assert info.engine_version is not None and info.engine_version.startswith("PostgreSQL 15")
    assert "/" in info.consistency["lsn"]
    assert info.consistency["snapshot_id"]
    assert info.consistency["standby"] == "false"
    assert info.extra["tool_version"].startswith("pg_dump")

    pg_server.drop_database("restored_registry")
    _source(pg_server, registry_db).restore(
        io.BytesIO(data), pg_server.admin_dsn("restored_registry"), info
    )
    original = table_checksums(pg_server.admin_dsn(registry_db))
    restored = table_checksums(pg_server.admin_dsn("restored_registry"))
    assert restored == original
    assert set(original) == {"citizen", "address", "registry_event"}
    assert pg_server.psql("restored_registry", "SELECT count(*) FROM adult_citizen")[0][0] > 0
    assert pg_server.psql("restored_registry", "SELECT last_value FROM certificate_no") == [
        (100000,)
    ]


def test_restore_accepts_a_uri_into_an_existing_database(
    pg_server: PgServer, registry_db: str
) -> None:
    """Restore works into an existing empty database named by a postgresql:// URI."""
    reader = _source(pg_server, registry_db).snapshot()
    data = read_all(reader)
    db = pg_server.create_database("restored_uri")
    uri = f"postgresql://postgres@127.0.0.1:{pg_server.port}/{db}"
    _source(pg_server, registry_db).restore(
        io.BytesIO(data), uri, reader.info, password=pg_server.admin_password
    )
    assert table_checksums(pg_server.admin_dsn(db)) == table_checksums(
        pg_server.admin_dsn(registry_db)
    )


def test_rows_committed_after_the_snapshot_point_are_not_in_the_dump(
    pg_server: PgServer,
) -> None:
    """The dump is exactly at the exported snapshot: rows committed once `snapshot()` has
    returned (the consistency point recorded) are absent from the stream, and the recorded
    LSN is not after the server's WAL position at that time."""
    db = pg_server.create_database("src_consistency")
    populate_registry(pg_server.dsn(db, with_password=True), 500)
    reader = _source(pg_server, db).snapshot()
    try:
        with psycopg.connect(pg_server.admin_dsn(db)) as conn:
            conn.execute("UPDATE citizen SET given_name = 'CHANGED' WHERE id <= 250")
            conn.execute("DELETE FROM registry_event")
            lsn_after = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        data = read_all(reader)
    finally:
        reader.abort()
    assert lsn_after is not None
    assert pg_server.psql(
        "postgres",
        f"SELECT '{reader.info.consistency['lsn']}'::pg_lsn <= '{lsn_after[0]}'::pg_lsn",
    ) == [(True,)]
    pg_server.drop_database("restored_consistency")
    _source(pg_server, db).restore(
        io.BytesIO(data), pg_server.admin_dsn("restored_consistency"), reader.info
    )
    restored = pg_server.psql(
        "restored_consistency",
        "SELECT (SELECT count(*) FROM citizen WHERE given_name = 'CHANGED'),"
        " (SELECT count(*) FROM registry_event) > 0",
    )
    assert restored == [(0, True)]


def test_password_never_on_a_command_line_and_passfile_removed(
    pg_server: PgServer, larger_than_a_pipe_db: str, tmp_path: Path
) -> None:
    """While pg_dump runs, no process's argv contains the password, and the temporary
    PGPASSFILE is already gone (so a backup killed now leaves no secret on disk)."""
    reader = _source(pg_server, larger_than_a_pipe_db, tmp_dir=tmp_path).snapshot()
    try:
        first = reader.read(1024)
        assert first.startswith(b"PGDMP")
        dumps = children_named("pg_dump")
        assert dumps, "pg_dump should be running while its stream is not fully read"
        assert cmdlines_containing(pg_server.password) == []
        assert list(tmp_path.iterdir()) == []
        read_all(reader)
    finally:
        reader.abort()
    assert list(tmp_path.iterdir()) == []


def test_bad_password_is_a_clear_error_naming_the_source(
    pg_server: PgServer, registry_db: str
) -> None:
    """A wrong password fails snapshot() with a SourceError that names the source and
    says authentication failed, without echoing the password."""
    wrong = "not-the-Password-123"
    src = PostgresSource(
        "population", pg_server.dsn(registry_db), runner=LocalRunner(), password=wrong
    )
    with pytest.raises(SourceError) as err:
        src.snapshot()
    message = str(err.value)
    assert "population" in message
    assert "password authentication failed" in message
    assert wrong not in message


def test_missing_database_is_a_clear_error(pg_server: PgServer) -> None:
    """A DSN naming a database that does not exist fails with an error naming it."""
    with pytest.raises(SourceError, match=r"population.*no_such_db.*does not exist"):
        _source(pg_server, "no_such_db").snapshot()


def test_missing_tool_is_a_clear_error(
    pg_server: PgServer, registry_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the client tools neither on PATH nor in the PostgreSQL lib dirs, the error says
    the tool is not installed and names the source."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match=r"source population: psql is not installed"):
        _source(pg_server, registry_db, bin_dirs=[]).snapshot()


def test_killed_dump_makes_finish_fail(pg_server: PgServer, larger_than_a_pipe_db: str) -> None:
    """A pg_dump killed mid-stream ends the stream early, and finish() raises instead of
    letting a truncated dump pass for a complete one."""
    reader = _source(pg_server, larger_than_a_pipe_db).snapshot()
    try:
        reader.read(1024)
        dumps = children_named("pg_dump")
        assert dumps, "pg_dump had already ended: the dump fitted in the pipe"
        for proc in dumps:
            os.kill(proc.pid, 9)
        while reader.read(65536):
            pass
        with pytest.raises(SourceError, match=r"population: pg_dump .*killed by signal 9"):
            reader.finish()
    finally:
        reader.abort()


def test_abort_stops_the_dump_and_its_snapshot_holder(
    pg_server: PgServer, registry_db: str
) -> None:
    """abort() kills pg_dump and the psql coprocess holding the snapshot (idempotently).

    Only this reader's processes are counted: a tool another test started may still be
    ending when this one begins."""

    def ours() -> set[int]:
        return {p.pid for name in ("pg_dump", "psql") for p in children_named(name)} - before

    before = {p.pid for name in ("pg_dump", "psql") for p in children_named(name)}
    reader = _source(pg_server, registry_db).snapshot()
    reader.read(16)
    started = {p.name() for p in psutil.Process().children(recursive=True) if p.pid in ours()}
    assert started == {"pg_dump", "psql"}
    reader.abort()
    reader.abort()
    assert ours() == set()


def test_restore_of_a_corrupt_stream_fails_clearly(pg_server: PgServer, registry_db: str) -> None:
    """A stream that is not a dump makes restore raise a SourceError naming the source."""
    reader = _source(pg_server, registry_db).snapshot()
    read_all(reader)
    with pytest.raises(SourceError, match=r"population: pg_restore could not restore"):
        _source(pg_server, registry_db).restore(
            io.BytesIO(b"PGDMP garbage" * 100), pg_server.admin_dsn("restored_bad"), reader.info
        )


def test_restore_stops_when_the_stream_raises(pg_server: PgServer, registry_db: str) -> None:
    """An error from the incoming stream (e.g. an integrity failure) kills pg_restore and
    propagates unchanged."""

    class Failing(io.RawIOBase):
        def read(self, size: int = -1, /) -> bytes:
            raise RuntimeError("chunk 42 failed authentication")

    reader = _source(pg_server, registry_db).snapshot()
    read_all(reader)
    with pytest.raises(RuntimeError, match="chunk 42"):
        _source(pg_server, registry_db).restore(
            Failing(), pg_server.admin_dsn("restored_failing"), reader.info
        )
    assert children_named("pg_restore") == []


def test_concurrent_snapshots_are_independent(pg_server: PgServer, registry_db: str) -> None:
    """Two snapshots of one database can run at the same time (one per target schedule)."""
    results: list[bytes] = []
    readers = [_source(pg_server, registry_db).snapshot() for _ in range(2)]
    threads = [threading.Thread(target=lambda r=r: results.append(read_all(r))) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(r.startswith(b"PGDMP") for r in results)


def test_a_stream_failing_part_way_leaves_no_partial_tables(
    pg_server: PgServer, registry_db: str
) -> None:
    """When the snapshot stream fails in the middle of the table data (a damaged chunk), the
    restore raises and the destination database holds no table at all: a half-restored
    registry never passes for a restored one."""

    reader = _source(pg_server, registry_db).snapshot()
    data = read_all(reader)
    pg_server.drop_database("restored_partial")
    with pytest.raises(RuntimeError, match="chunk 42"):
        _source(pg_server, registry_db).restore(
            FailingAfter(data, len(data) * 3 // 4),
            pg_server.admin_dsn("restored_partial"),
            reader.info,
        )
    assert table_checksums(pg_server.admin_dsn("restored_partial")) == {}
