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
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from recoveryd.app import wiring
from recoveryd.app.snapshots import existing_repositories, restore
from recoveryd.config import LoadedConfig, PostgresSource
from recoveryd.errors import NotFoundError, UsageError
from recoveryd.model import SnapshotInfo
from recoveryd.repo.manifest import Manifest
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
