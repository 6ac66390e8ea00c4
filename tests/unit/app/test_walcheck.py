"""The WAL archive beside base backups: continuity problems and what prune may delete."""

from __future__ import annotations

from recoveryd.app.walcheck import prune_wal, wal_problems
from recoveryd.repo import SnapshotMeta, write_snapshot
from recoveryd.repo.repository import Repository
from recoveryd.repo.wal import WalArchive
from recoveryd.sources.base import SourceInfo
from tests.unit.repo.helpers import BytesReader, new_repo


def _base_backup(repo: Repository, start: str, stop: str) -> str:
    """A committed snapshot recorded as a base backup of `registry` (its bytes do not
    matter here, its manifest does)."""
    reader = BytesReader(b"base backup tar")
    reader.info = SourceInfo(
        "postgresql",
        "pg_basebackup-tar",
        consistency={"start_lsn": start, "stop_lsn": stop, "timeline": "1"},
        extra={"wal_segment_size": str(16 << 20)},
    )
    return write_snapshot(reader, [repo], SnapshotMeta(source="registry"))[0].id


def _archive(repo: Repository, *segments: int) -> WalArchive:
    archive = WalArchive(repo, "registry")
    for n in segments:
        archive.push(f"0000000100000000000000{n:02X}", b"wal")
    archive.push("00000002.history", b"history")
    return archive


def test_prune_deletes_only_wal_older_than_the_oldest_base_backup() -> None:
    """Segments before the oldest retained base backup's start go; the rest, and the
    timeline history, stay; a dry run deletes nothing but counts the same."""
    repo = new_repo()
    _base_backup(repo, "0/5000028", "0/5000100")
    _base_backup(repo, "0/8000028", "0/8000100")
    archive = _archive(repo, 3, 4, 5, 6, 8, 9)
    assert prune_wal(repo, dry_run=True) == 2
    assert len(archive.names()) == 7
    assert prune_wal(repo) == 2
    assert archive.names() == ["00000001000000000000000" + c for c in "5689"] + ["00000002.history"]


def test_a_source_without_base_backups_keeps_all_its_wal() -> None:
    """Without a base backup nothing says which WAL is no longer needed: all is kept."""
    repo = new_repo()
    archive = _archive(repo, 1, 2, 3)
    assert prune_wal(repo) == 0
    assert len(archive.names()) == 4


def test_a_gap_after_a_base_backup_is_a_problem_naming_the_segment() -> None:
    """A segment missing between a base backup's end and the newest archived segment is
    one problem naming `wal/<source>/<segment>` and the base backup."""
    repo = new_repo()
    sid = _base_backup(repo, "0/5000028", "0/5000100")
    _archive(repo, 5, 6, 8)
    (problem,) = wal_problems(repo)
    assert problem.obj == "wal/registry/000000010000000000000007"
    assert problem.snapshot == sid


def _dump(repo: Repository, binlog: str) -> str:
    """A committed snapshot recorded as a MariaDB dump at the start of `binlog`."""
    reader = BytesReader(b"-- dump")
    reader.info = SourceInfo(
        "mysql",
        "mysqldump-sql",
        consistency={"binlog_file": binlog, "binlog_position": "4"},
    )
    return write_snapshot(reader, [repo], SnapshotMeta(source="legal"))[0].id


def test_binlog_gaps_and_prune_follow_the_dumps_positions() -> None:
    """A binary log missing after a dump's own is a problem naming it; prune deletes the
    logs older than the oldest dump's and keeps the rest."""
    from recoveryd.app.walcheck import binlog_problems, prune_binlogs
    from recoveryd.repo.wal import BinlogArchive

    repo = new_repo()
    _dump(repo, "binlog.000003")
    archive = BinlogArchive(repo, "legal")
    for n in (1, 2, 3, 5):
        archive.push(f"binlog.{n:06d}", b"events")
    archive.put_partial("binlog.000006", b"events")
    (problem,) = binlog_problems(repo)
    assert problem.obj == "binlog/legal/binlog.000004"
    assert prune_binlogs(repo) == 2
    assert archive.names() == ["binlog.000003", "binlog.000005", "binlog.000006.partial"]
