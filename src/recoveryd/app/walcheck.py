"""Continuity of the WAL archive: what `verify` adds for PostgreSQL sources with base
backups (a recovery to a point in time needs every segment after the backup)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from recoveryd.config import LoadedConfig, MysqlSource, PostgresSource
from recoveryd.model import Problem
from recoveryd.repo.manifest import Manifest
from recoveryd.repo.repository import Repository
from recoveryd.repo.wal import (
    DEFAULT_SEGMENT_SIZE,
    BinlogArchive,
    WalArchive,
    binlog_order,
    gaps,
    lsn_value,
    segment_number,
    segment_of,
)
from recoveryd.sources.mysql import STREAM_FORMAT as MYSQL_DUMP
from recoveryd.sources.pgphysical import STREAM_FORMAT


def _bases(repo: Repository, stream_format: str) -> Iterator[tuple[str, Manifest]]:
    """(snapshot id, manifest) of each base a log archive continues from: the snapshots in
    `stream_format` (base backups for WAL, dumps for binary logs)."""
    for sid in repo.snapshot_ids():
        m = repo.manifest(sid)
        if m.stream_format == stream_format:
            yield sid, m


def _missing(found: dict[str, Problem], sid: str, obj: str, message: str) -> None:
    """A missing log file, reported once (for the first base that needs it)."""
    found.setdefault(obj, Problem(snapshot=sid, obj=obj, message=message))


def wal_problems(repo: Repository) -> list[Problem]:
    """Gaps in the WAL archive of `repo`: for every base backup, each segment missing
    between the end of that backup and the newest archived segment of its source (a
    recovery from the backup would stop before it). One problem per missing segment."""
    found: dict[str, Problem] = {}
    names: dict[str, list[str]] = {}
    for sid, m in _bases(repo, STREAM_FORMAT):
        stop, timeline = m.consistency.get("stop_lsn"), m.consistency.get("timeline")
        if stop is None or timeline is None:
            continue
        if m.source not in names:
            names[m.source] = WalArchive(repo, m.source).names()
        seg_size = int(m.extra.get("wal_segment_size") or DEFAULT_SEGMENT_SIZE)
        start = segment_of(stop, int(timeline), seg_size)
        for missing in gaps(names[m.source], start, seg_size):
            _missing(
                found,
                sid,
                f"wal/{m.source}/{missing}",
                "WAL segment missing from the archive: a recovery from this base backup "
                "stops before it (check the server's archive_command)",
            )
    return list(found.values())


def prune_wal(repo: Repository, *, dry_run: bool = False) -> int:
    """Delete the archived WAL older than the oldest base backup of each source (nothing
    retained needs it); timeline history files stay. A source without base backups keeps
    all its WAL. Returns the number of files deleted (or that would be)."""
    oldest: dict[str, tuple[int, int]] = {}  # source -> (segment number, segment size)
    for _, m in _bases(repo, STREAM_FORMAT):
        start, timeline = m.consistency.get("start_lsn"), m.consistency.get("timeline")
        if start is None or timeline is None:
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


def pitr_sources(cfg: LoadedConfig) -> list[str]:
    """Sources that can be recovered to a point in time: PostgreSQL with base backups
    (`mode: physical`) or streamed WAL, MariaDB/MySQL with streamed binary logs."""
    out = []
    for name, src in cfg.config.sources.items():
        if (isinstance(src, PostgresSource) and (src.mode == "physical" or src.wal.stream)) or (
            isinstance(src, MysqlSource) and src.binlog.stream
        ):
            out.append(name)
    return out


@dataclass(frozen=True)
class RecoveryWindow:
    """What a point-in-time source can be recovered to, read from its targets."""

    start: datetime | None  # end of the oldest base backup (dump, for MariaDB)
    newest: datetime | None  # when the newest archived log file was stored

    @property
    def end(self) -> datetime | None:
        """The newest moment recoverable: None until there is a base and a log file."""
        return None if self.start is None else self.newest

    def lag_seconds(self, now: datetime) -> float | None:
        """Seconds since the newest log file was stored; None when there is none."""
        return None if self.newest is None else max(0.0, (now - self.newest).total_seconds())


def recovery_window(cfg: LoadedConfig, source: str) -> RecoveryWindow:
    """From the end of the oldest base backup (dump, for MariaDB) of a point-in-time
    source to the moment the newest archived log file was stored, over its targets."""
    from recoveryd.app.snapshots import existing_repositories

    kind = cfg.config.sources[source]
    base_format = STREAM_FORMAT if isinstance(kind, PostgresSource) else MYSQL_DUMP
    archive_class = WalArchive if isinstance(kind, PostgresSource) else BinlogArchive
    oldest: datetime | None = None
    newest: datetime | None = None
    with existing_repositories(cfg) as repos:
        for repo in repos:
            if repo.name not in kind.targets:
                continue
            for _, m in _bases(repo, base_format):
                if m.source == source:
                    oldest = m.end_time if oldest is None else min(oldest, m.end_time)
            archive = archive_class(repo, source)
            for info in repo.store.list(archive.key("")):
                if info.modified is not None:
                    newest = info.modified if newest is None else max(newest, info.modified)
    return RecoveryWindow(oldest, newest)


def recoverable(cfg: LoadedConfig, source: str, now: datetime) -> dict[str, object]:
    """`{"recoverable": {"from", "to"}, "archive_lag_s"}` of a point-in-time source (see
    `recovery_window`); nulls where there is none yet."""
    window = recovery_window(cfg, source)
    lag = window.lag_seconds(now)
    return {
        "recoverable": {
            "from": None if window.start is None else window.start.isoformat(),
            "to": None if window.end is None else window.end.isoformat(),
        },
        "archive_lag_s": None if lag is None else round(lag, 1),
    }


def binlog_problems(repo: Repository) -> list[Problem]:
    """Gaps in the binary logs of `repo`: from the binlog of every dump that recorded a
    position to the newest archived one, each log number must be archived (complete or,
    for the newest, partial)."""
    found: dict[str, Problem] = {}
    numbers: dict[str, set[int]] = {}
    for sid, m in _bases(repo, MYSQL_DUMP):
        first = m.consistency.get("binlog_file")
        if first is None:
            continue
        if m.source not in numbers:
            names = BinlogArchive(repo, m.source).names()
            numbers[m.source] = {binlog_order(n)[0] for n in names}
        have = numbers[m.source]
        if not have:
            continue
        stem, low = first.rsplit(".", 1)[0], binlog_order(first)[0]
        for n in range(low, max(have) + 1):
            if n not in have:
                _missing(
                    found,
                    sid,
                    f"binlog/{m.source}/{stem}.{n:0{len(first.rsplit('.', 1)[1])}d}",
                    "binary log missing from the archive: a recovery from this dump stops "
                    "before it (check the binlog stream)",
                )
    return list(found.values())


def prune_binlogs(repo: Repository, *, dry_run: bool = False) -> int:
    """Delete the archived binary logs older than the binlog of the oldest dump kept that
    recorded a position; a source without such a dump keeps them all."""
    oldest: dict[str, int] = {}
    for _, m in _bases(repo, MYSQL_DUMP):
        first = m.consistency.get("binlog_file")
        if first is not None:
            number = binlog_order(first)[0]
            oldest[m.source] = min(oldest.get(m.source, number), number)
    deleted = 0
    for source, first_number in oldest.items():
        archive = BinlogArchive(repo, source)
        for name in archive.names():
            if binlog_order(name)[0] < first_number:
                if not dry_run:
                    repo.store.delete(archive.key(name))
                deleted += 1
    return deleted


def log_problems(repo: Repository) -> list[Problem]:
    """Every gap in the WAL and binary log archives of `repo` (what `verify` adds)."""
    return [*wal_problems(repo), *binlog_problems(repo)]
