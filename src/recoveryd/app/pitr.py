"""Recovery of a PostgreSQL source to a point in time: the newest base backup taken
before the target, then the WAL archive replayed up to it (`restore SOURCE --time T`).

The base backup is restored into an empty data directory, and the recovery settings
are written beside it: `restore_command` fetching from the archive with `wal-get`,
the recovery target, `recovery_target_action = 'promote'`, and `archive_mode = off`
so that a recovered copy (a drill, an investigation) never archives into the
production source's archive. Starting PostgreSQL on the directory replays exactly to
the target and promotes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from recoveryd.app import wiring
from recoveryd.app.snapshots import existing_repositories, restore
from recoveryd.config import LoadedConfig, MysqlSource, PostgresSource
from recoveryd.errors import NotFoundError, UsageError
from recoveryd.model import SnapshotInfo
from recoveryd.repo.manifest import Manifest
from recoveryd.repo.wal import BinlogArchive, binlog_order
from recoveryd.sources.mysql import STREAM_FORMAT as MYSQL_DUMP
from recoveryd.sources.mysql import MysqlSource as MysqlAdapter
from recoveryd.sources.pgphysical import STREAM_FORMAT

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


@dataclass(frozen=True)
class RecoveryTarget:
    """Exactly one of `time` (aware) and `lsn`."""

    time: datetime | None = None
    lsn: str | None = None

    def settings(self) -> dict[str, str]:
        if self.time is not None:
            return {"recovery_target_time": self.time.isoformat()}
        return {"recovery_target_lsn": str(self.lsn)}


def parse_time(text: str, cfg: LoadedConfig) -> datetime:
    """ISO 8601; a time without an offset is in `daemon.timezone` (else this host's)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f'--time "{text}" is not an ISO 8601 time; write e.g. "2026-12-03 10:15:00+08:00"'
        ) from None
    if when.tzinfo is not None:
        return when
    zone = cfg.config.daemon.timezone
    return when.replace(tzinfo=ZoneInfo(zone)) if zone else when.astimezone()


def parse_lsn(text: str) -> int:
    if not _LSN.match(text):
        raise UsageError(f'--lsn "{text}" is not a WAL position; write e.g. "0/16B3748"')
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def base_backup_before(cfg: LoadedConfig, source: str, target: RecoveryTarget) -> Manifest:
    """The newest base backup of `source` that ended before the target."""
    settings = cfg.config.sources.get(source)
    wiring.source_names(cfg, [source])
    if not isinstance(settings, PostgresSource):
        raise UsageError(f"sources.{source}: recovery to a point in time is for postgresql")
    candidates: list[Manifest] = []
    with existing_repositories(cfg) as repos:
        for repo in repos:
            for sid in repo.snapshot_ids():
                m = repo.manifest(sid)
                if m.source == source and m.stream_format == STREAM_FORMAT and _before(m, target):
                    candidates.append(m)
    if not candidates:
        raise NotFoundError(
            f"no base backup of {source} ended before the recovery target; take base "
            f"backups with `mode: physical` (docs/OPERATIONS.md §7a)"
        )
    return max(candidates, key=lambda m: (m.end_time, m.id))


def _before(m: Manifest, target: RecoveryTarget) -> bool:
    if target.time is not None:
        return m.end_time <= target.time
    stop = m.consistency.get("stop_lsn")
    return stop is not None and parse_lsn(stop) <= parse_lsn(str(target.lsn))


def restore_to_point(
    cfg: LoadedConfig,
    source: str,
    target: RecoveryTarget,
    dest: str,
    *,
    command: str | None = None,
    password: str | None = None,
) -> SnapshotInfo:
    """PostgreSQL: see `restore_postgres_to_point`; MariaDB/MySQL: the newest dump
    before the target restored into the DSN `dest`, then its binary logs replayed up to
    the target (`restore_mysql_to_time`)."""
    settings = cfg.config.sources.get(source)
    wiring.source_names(cfg, [source])
    if isinstance(settings, MysqlSource):
        if target.time is None:
            raise UsageError("--lsn is for PostgreSQL sources; use --time for MariaDB/MySQL")
        return restore_mysql_to_time(cfg, source, target.time, dest, password=password)
    return restore_postgres_to_point(cfg, source, target, Path(dest), command=command)


def restore_postgres_to_point(
    cfg: LoadedConfig,
    source: str,
    target: RecoveryTarget,
    dest: Path,
    *,
    command: str | None = None,
) -> SnapshotInfo:
    """Restore the base backup before `target` into `dest` (new or empty) and write the
    recovery settings; returns the base backup used. `command` is the recoveryd that
    PostgreSQL runs for `restore_command` (default: this one, `self_command()`)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"--to {dest} exists and is not an empty directory; name a new one")
    base = base_backup_before(cfg, source, target)
    done = restore(cfg, base.id, str(dest))
    command = (
        f"{shlex.quote(command) if command else self_command()} "
        f"--config {shlex.quote(str(cfg.path.absolute()))}"
    )
    settings = {
        "restore_command": f"{command} wal-get {shlex.quote(source)} %f %p",
        **target.settings(),
        "recovery_target_action": "promote",
        "archive_mode": "off",
    }
    with (dest / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# written by recoveryd restore: recovery to a point in time\n")
        for key, value in settings.items():
            conf.write(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'\n")
    (dest / "recovery.signal").touch()
    _same_owner(dest, "postgresql.auto.conf", "recovery.signal")
    return done


def self_command() -> str:
    """How PostgreSQL can run this recoveryd: the `recoveryd` executable that is running,
    else this interpreter with `-m recoveryd`."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "recoveryd" and argv0.is_file():
        return shlex.quote(str(argv0.absolute()))
    return f"{shlex.quote(sys.executable)} -m recoveryd"


def _same_owner(dest: Path, *names: str) -> None:
    """Files written as root belong to the data directory's owner, as PostgreSQL needs."""
    if os.geteuid() != 0:
        return
    owner = dest.stat()
    for name in names:
        os.chown(dest / name, owner.st_uid, owner.st_gid)


def restore_mysql_to_time(
    cfg: LoadedConfig, source: str, when: datetime, dest: str, *, password: str | None = None
) -> SnapshotInfo:
    """The newest dump of `source` that ended before `when` into the database of `dest`,
    then the archived binary logs from the dump's position up to `when` replayed into it
    (staged in a private folder under the state directory, removed afterwards)."""
    dump = _newest_dump_before(cfg, source, when)
    done = restore(cfg, dump.id, dest, password=password)
    first = dump.consistency["binlog_file"]
    state_dir = cfg.resolve_path(cfg.config.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="binlogs-", dir=state_dir))  # mode 0700
    try:
        files = _fetch_binlogs(cfg, source, dump, first, staging)
        with wiring.source_session(cfg, source) as adapter:
            if not isinstance(adapter, MysqlAdapter):
                raise UsageError(f"sources.{source}: binary logs are for mysql sources")
            adapter.replay_binlogs(
                files,
                start_position=dump.consistency["binlog_position"],
                stop_datetime=when.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                database=dump.extra.get("database") or source,
                dest=dest,
                password=password,
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return done


def _newest_dump_before(cfg: LoadedConfig, source: str, when: datetime) -> Manifest:
    candidates: list[Manifest] = []
    with existing_repositories(cfg) as repos:
        for repo in repos:
            for sid in repo.snapshot_ids():
                m = repo.manifest(sid)
                if (
                    m.source == source
                    and m.stream_format == MYSQL_DUMP
                    and m.end_time <= when
                    and "binlog_file" in m.consistency
                ):
                    candidates.append(m)
    if not candidates:
        raise NotFoundError(
            f"no dump of {source} with a binlog position ended before {when.isoformat()}; "
            "binary logging must be on when the dump is taken"
        )
    return max(candidates, key=lambda m: (m.end_time, m.id))


def _fetch_binlogs(
    cfg: LoadedConfig, source: str, dump: Manifest, first: str, staging: Path
) -> list[Path]:
    """The archived binary logs from `first` on (the newest possibly partial), written
    under their own names in `staging`, in log order."""
    with existing_repositories(cfg) as repos:
        for repo in repos:
            archive = BinlogArchive(repo, source)
            names = archive.names()
            complete = {n for n in names if not n.endswith(".partial")}
            wanted = sorted({n.removesuffix(".partial") for n in names}, key=binlog_order)
            wanted = [n for n in wanted if binlog_order(n) >= binlog_order(first)]
            if not wanted or wanted[0] != first:
                continue
            files = []
            for name in wanted:
                data = archive.get(name if name in complete else f"{name}.partial")
                path = staging / name
                path.write_bytes(data)
                files.append(path)
            return files
    raise NotFoundError(
        f"binary log {first} of {source} (the position of dump {dump.id[:12]}) is not "
        "archived; run `recoveryd binlog-stream` (or `binlog: {{stream: true}}`)"
    )
