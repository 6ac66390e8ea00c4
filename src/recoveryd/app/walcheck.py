"""Continuity of the WAL archive: what `verify` adds for PostgreSQL sources with base
backups (a recovery to a point in time needs every segment after the backup)."""

from __future__ import annotations

from recoveryd.model import Problem
from recoveryd.repo.repository import Repository
from recoveryd.repo.wal import (
    DEFAULT_SEGMENT_SIZE,
    WalArchive,
    gaps,
    lsn_value,
    segment_number,
    segment_of,
)
from recoveryd.sources.pgphysical import STREAM_FORMAT


def wal_problems(repo: Repository) -> list[Problem]:
    """Gaps in the WAL archive of `repo`: for every base backup, each segment missing
    between the end of that backup and the newest archived segment of its source (a
    recovery from the backup would stop before it). One problem per missing segment."""
    found: dict[str, Problem] = {}
    names: dict[str, list[str]] = {}
    for sid in repo.snapshot_ids():
        m = repo.manifest(sid)
        stop, timeline = m.consistency.get("stop_lsn"), m.consistency.get("timeline")
        if m.stream_format != STREAM_FORMAT or stop is None or timeline is None:
            continue
        if m.source not in names:
            names[m.source] = WalArchive(repo, m.source).names()
        seg_size = int(m.extra.get("wal_segment_size") or DEFAULT_SEGMENT_SIZE)
        start = segment_of(stop, int(timeline), seg_size)
        for missing in gaps(names[m.source], start, seg_size):
            obj = f"wal/{m.source}/{missing}"
            found.setdefault(
                obj,
                Problem(
                    snapshot=sid,
                    obj=obj,
                    message="WAL segment missing from the archive: a recovery from this base "
                    "backup stops before it (check the server's archive_command)",
                ),
            )
    return list(found.values())


def prune_wal(repo: Repository, *, dry_run: bool = False) -> int:
    """Delete the archived WAL older than the oldest base backup of each source (nothing
    retained needs it); timeline history files stay. A source without base backups keeps
    all its WAL. Returns the number of files deleted (or that would be)."""
    oldest: dict[str, tuple[int, int]] = {}  # source -> (segment number, segment size)
    for sid in repo.snapshot_ids():
        m = repo.manifest(sid)
        start, timeline = m.consistency.get("start_lsn"), m.consistency.get("timeline")
        if m.stream_format != STREAM_FORMAT or start is None or timeline is None:
            continue
        seg_size = int(m.extra.get("wal_segment_size") or DEFAULT_SEGMENT_SIZE)
        segno = lsn_value(start) // seg_size
        if m.source not in oldest or segno < oldest[m.source][0]:
            oldest[m.source] = (segno, seg_size)
    deleted = 0
    for source, (first, seg_size) in oldest.items():
        archive = WalArchive(repo, source)
        for name in archive.names():
            number = segment_number(name, seg_size)
            if number is None or number >= first:
                continue
            if not dry_run:
                repo.store.delete(archive.key(name))
            deleted += 1
    return deleted
