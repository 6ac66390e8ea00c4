"""PostgreSQL's own archiver, as the server reports it (`pg_stat_archiver`).

`archive_command = 'recoveryd ... wal-push ...'` runs inside the server: when it fails
(the store is down, the key unreadable by `postgres`, a full spool), PostgreSQL keeps
the segment in `pg_wal`, retries, and counts the failure, and nothing in recoveryd runs
to notice. The daemon reads the archiver's counters for every PostgreSQL source with WAL
archiving and alerts when archiving fails or when completed segments wait longer than
the source's RPO.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from recoveryd.config import LoadedConfig, PostgresSource
from recoveryd.errors import SourceError
from recoveryd.repo.wal import segment_number
from recoveryd.sources.postgresql import PostgresSource as PostgresAdapter

ARCHIVER_SQL = """
SELECT json_build_object(
  'archive_mode', current_setting('archive_mode'),
  'failed_count', a.failed_count,
  'last_failed_wal', a.last_failed_wal,
  'last_failed_time', a.last_failed_time,
  'last_archived_wal', a.last_archived_wal,
  'last_archived_time', a.last_archived_time,
  'current_wal', CASE WHEN pg_is_in_recovery() THEN NULL
                      ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  'segment_size', (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
  'now', now())
FROM pg_stat_archiver a
"""


@dataclass(frozen=True)
class ArchiverStatus:
    """`pg_stat_archiver` of one server, with its WAL position, at `now` (server time)."""

    archive_mode: str
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    last_archived_wal: str | None
    last_archived_time: datetime | None
    pending_segments: int | None  # completed segments not archived yet (None: unknown)
    now: datetime

    @property
    def failing(self) -> bool:
        """The last attempt failed: no segment was archived since the last failure."""
        if self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time

    @classmethod
    def from_json(cls, text: str) -> ArchiverStatus:
        doc = json.loads(text)
        seg_size = int(doc["segment_size"])
        last, current = doc["last_archived_wal"], doc["current_wal"]
        pending = None
        if last and current and last[:8] == current[:8]:
            done, now = segment_number(last, seg_size), segment_number(current, seg_size)
            if done is not None and now is not None:
                pending = max(0, now - done - 1)  # the current segment is still being written
        return cls(
            archive_mode=str(doc["archive_mode"]),
            failed_count=int(doc["failed_count"]),
            last_failed_wal=doc["last_failed_wal"],
            last_failed_time=_time(doc["last_failed_time"]),
            last_archived_wal=last,
            last_archived_time=_time(doc["last_archived_time"]),
            pending_segments=pending,
            now=datetime.fromisoformat(doc["now"]),
        )


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def archiving_sources(cfg: LoadedConfig) -> list[str]:
    """PostgreSQL sources whose WAL is archived: base backups (`mode: physical`, which
    need `archive_command`) or a WAL stream (whose server may archive as well)."""
    return [
        name
        for name, src in cfg.config.sources.items()
        if isinstance(src, PostgresSource) and (src.mode == "physical" or src.wal.stream)
    ]


def archiver_status(cfg: LoadedConfig, source: str) -> ArchiverStatus:
    """Read the archiver of `source`'s server with psql where the source's tools run (this
    host, or over SSH with `via_ssh`); SourceError when it cannot be reached or the
    answer cannot be read."""
    from recoveryd.app.wiring import source_session

    with source_session(cfg, source) as adapter:
        if not isinstance(adapter, PostgresAdapter):
            raise SourceError(f"source {source}: not a PostgreSQL source")
        text = adapter.query(ARCHIVER_SQL)
    try:
        return ArchiverStatus.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"source {source}: unreadable pg_stat_archiver answer ({exc})") from exc


def archiver_problem(status: ArchiverStatus, limit_s: float, *, streamed: bool) -> str | None:
    """One sentence saying what is wrong with the server's archiving, or None when it is
    fine. `limit_s` is how long completed segments may wait (the source's RPO); with a
    WAL stream (`streamed`), archive_mode = off is fine (the stream archives)."""
    if status.archive_mode == "off":
        if streamed:
            return None
        return (
            "archive_mode is off on the server, so no WAL is archived and no recovery to a "
            "point in time is possible; set archive_mode = on and archive_command "
            "(docs/OPERATIONS.md, section 7a) and restart the server"
        )
    if status.failing:
        since = status.last_archived_time
        return (
            f"the server's archive_command fails: {status.failed_count} failures, the last for "
            f"{status.last_failed_wal} at {status.last_failed_time:%Y-%m-%d %H:%M:%S%z}; "
            f"nothing archived since {'the statistics were reset' if since is None else since}"
            "; PostgreSQL keeps the segments in pg_wal meanwhile: read the server's log "
            "for the command's error"
        )
    waited = (
        None
        if status.last_archived_time is None
        else (status.now - status.last_archived_time).total_seconds()
    )
    if status.pending_segments and waited is not None and waited > limit_s:
        return (
            f"{status.pending_segments} completed WAL segments wait to be archived and none "
            f"was archived for {waited:.0f}s (limit {limit_s:g}s): archive_command is too slow "
            "or stuck"
        )
    return None
