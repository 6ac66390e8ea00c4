"""SQLite source: online-backup snapshots and atomic restores (no server needed)."""

from __future__ import annotations

import io
import logging
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from recoveryd.errors import SourceError, UsageError
from recoveryd.sources.sqlite import STREAM_FORMAT, SqliteSource


def _make_db(path: Path, rows: int = 2000, *, wal: bool = True) -> None:
    with sqlite3.connect(path) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA user_version = 7")
        conn.execute(
            "CREATE TABLE citizen (id INTEGER PRIMARY KEY, name TEXT, birth TEXT, notes TEXT)"
        )
        conn.execute("CREATE TABLE pair (a INTEGER, b INTEGER)")
        conn.executemany(
            "INSERT INTO citizen VALUES (?, ?, ?, ?)",
            ((i, f"名字{i}", f"19{i % 100:02d}-01-01", "x" * (i % 50)) for i in range(rows)),
        )


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM citizen ORDER BY id").fetchall()


def _read(reader: object) -> bytes:
    out = io.BytesIO()
    while data := reader.read(65536):  # type: ignore[attr-defined]
        out.write(data)
    reader.finish()  # type: ignore[attr-defined]
    return out.getvalue()


def test_round_trip_is_row_and_byte_equal(tmp_path: Path) -> None:
    """A snapshot restored to a new path has the same rows, and the restored file is
    byte-identical to the stream; the manifest data records versions and sizes."""
    db = tmp_path / "cache.db"
    _make_db(db)
    src = SqliteSource("health-code-cache", db, tmp_dir=tmp_path)
    reader = src.snapshot()
    data = _read(reader)
    assert data.startswith(b"SQLite format 3\0")
    assert reader.info.stream_format == STREAM_FORMAT
    assert reader.info.engine_version == f"SQLite {sqlite3.sqlite_version}"
    assert reader.info.consistency["user_version"] == "7"
    assert int(reader.info.consistency["page_count"]) * 4096 >= len(data) // 2
    assert list(tmp_path.glob("recoveryd-sqlite-*")) == []  # the temp copy is gone
    dest = tmp_path / "restored" / "cache.db"
    dest.parent.mkdir()
    src.restore(io.BytesIO(data), str(dest), reader.info)
    assert dest.read_bytes() == data
    assert _rows(dest) == _rows(db)


def test_restore_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    """Restoring onto an existing database is refused (naming it) unless overwrite=True,
    and a refused restore leaves the existing file untouched."""
    db = tmp_path / "a.db"
    _make_db(db, 10)
    src = SqliteSource("cache", db)
    reader = src.snapshot()
    data = _read(reader)
    other = tmp_path / "b.db"
    other.write_bytes(b"precious")
    with pytest.raises(UsageError, match=r"source cache: .*b\.db already exists"):
        src.restore(io.BytesIO(data), str(other), reader.info)
    assert other.read_bytes() == b"precious"
    src.restore(io.BytesIO(data), str(other), reader.info, overwrite=True)
    assert _rows(other) == _rows(db)


def test_restore_of_garbage_leaves_nothing(tmp_path: Path) -> None:
    """A stream that is not a SQLite database fails restore and leaves no file behind."""
    db = tmp_path / "a.db"
    _make_db(db, 10)
    src = SqliteSource("cache", db)
    info = src.snapshot().info
    dest = tmp_path / "out" / "x.db"
    dest.parent.mkdir()
    with pytest.raises(SourceError, match="source cache: restored"):
        src.restore(io.BytesIO(b"not a database" * 1000), str(dest), info)
    assert list(dest.parent.iterdir()) == []


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    """Snapshotting a path that does not exist names the source and the path."""
    with pytest.raises(SourceError, match=r"source cache: database .*nope\.db does not exist"):
        SqliteSource("cache", tmp_path / "nope.db").snapshot()


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    """Snapshotting a file that is not SQLite fails with an error naming the source."""
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"hello world" * 500)
    with pytest.raises(SourceError, match=r"source cache: backup of .*bogus\.db failed"):
        SqliteSource("cache", bogus).snapshot()


def _writer(path: str, stop: multiprocessing.synchronize.Event, started: object) -> None:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    i = 0
    while not stop.is_set():
        # Each transaction inserts a matched pair; a torn copy would hold half a pair.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO pair VALUES (?, 1)", (i,))
        conn.execute("INSERT INTO pair VALUES (?, 2)", (i,))
        conn.execute("COMMIT")
        i += 1
        time.sleep(0.001)  # a busy application, not a lock-hogging loop that starves readers
        if i == 50:
            started.set()  # type: ignore[attr-defined]
    conn.close()


@pytest.mark.parametrize("wal", [True, False], ids=["wal", "rollback-journal"])
def test_snapshot_is_consistent_while_another_process_writes(tmp_path: Path, wal: bool) -> None:
    """Snapshots taken while another process commits pairs of rows never contain half
    a transaction, in WAL and in rollback-journal mode."""
    db = tmp_path / "busy.db"
    _make_db(db, 20000, wal=wal)
    ctx = multiprocessing.get_context("spawn")
    stop, started = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(db), stop, started))
    proc.start()
    try:
        assert started.wait(60)
        src = SqliteSource("busy", db, tmp_dir=tmp_path)
        for n in range(3):
            reader = src.snapshot()
            data = _read(reader)
            copy = tmp_path / f"copy{n}.db"
            src.restore(io.BytesIO(data), str(copy), reader.info)
            with sqlite3.connect(copy) as conn:
                bad = conn.execute(
                    "SELECT count(*) FROM (SELECT a FROM pair GROUP BY a HAVING count(*) != 2)"
                ).fetchone()[0]
                total = conn.execute("SELECT count(*) FROM pair").fetchone()[0]
            assert bad == 0
            assert total % 2 == 0 and total >= 100
    finally:
        stop.set()
        proc.join(30)


def test_a_killed_restores_part_file_is_removed_by_the_next_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The `.part` file a killed restore left beside its destination is removed by the next
    restore to that path, with a warning naming it; another file's part is left alone."""
    db = tmp_path / "a.db"
    _make_db(db, 10)
    src = SqliteSource("cache", db)
    reader = src.snapshot()
    data = _read(reader)
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / ".x.db.k1l2m3n4.part"
    leftover.write_bytes(b"half a registry")
    other = out / ".y.db.k1l2m3n4.part"
    other.write_bytes(b"not ours")
    with caplog.at_level(logging.WARNING):
        src.restore(io.BytesIO(data), str(out / "x.db"), reader.info)
    assert sorted(p.name for p in out.iterdir()) == [".y.db.k1l2m3n4.part", "x.db"]
    assert f"removed {leftover}: partial file left by an interrupted restore" in caplog.text


def test_a_uri_destination_is_refused(tmp_path: Path) -> None:
    """A database URI given as the destination of a SQLite snapshot is refused (not turned
    into folders named after it), and the refusal does not repeat the URI."""
    db = tmp_path / "a.db"
    _make_db(db, 10)
    src = SqliteSource("cache", db)
    info = src.snapshot().info
    dest = "postgresql://u:Secret-pw@127.0.0.1/x"
    with pytest.raises(SourceError, match="is a postgresql:// URI") as caught:
        src.restore(io.BytesIO(b""), dest, info)
    assert "Secret-pw" not in str(caught.value)
    assert not Path("postgresql:").exists()


def test_the_snapshot_knows_its_size(tmp_path: Path) -> None:
    """A snapshot's info carries the database's size, for progress: exactly the stream's
    length."""
    db = tmp_path / "a.db"
    _make_db(db, 500)
    reader = SqliteSource("cache", db).snapshot()
    assert reader.info.expected_size == len(_read(reader))
