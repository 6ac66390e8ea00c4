"""Continuous WAL archiving of PostgreSQL sources: what `archive_command` and
`restore_command` call (`recoveryd wal-push` / `recoveryd wal-get`).

`wal_push` returns only once the file is stored durably in every target of the
source (the stores' `put` is atomic and durable: fsync and rename on a
filesystem, a completed PUT on S3), so PostgreSQL recycles a segment only when
it is safe off the host. `wal_get` tries the source's targets in order and
writes the file atomically where PostgreSQL asked for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from recoveryd.app import wiring
from recoveryd.config import LoadedConfig, PostgresSource
from recoveryd.errors import NotFoundError, RecoverydError, UsageError
from recoveryd.repo.wal import SEGMENT, PushResult, WalArchive, check_name


def _targets(cfg: LoadedConfig, source: str) -> list[str]:
    wiring.source_names(cfg, [source])
    settings = cfg.config.sources[source]
    if not isinstance(settings, PostgresSource):
        raise UsageError(
            f"sources.{source} is a {settings.kind} source; WAL archiving is for postgresql"
        )
    return list(settings.targets)


def wal_push(cfg: LoadedConfig, source: str, path: Path) -> dict[str, PushResult]:
    """Archive the WAL file at `path` (PostgreSQL's %p) into every target of `source`;
    what happened in each target."""
    targets = _targets(cfg, source)
    check_name(path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read WAL file {path}: {exc.strerror}") from None
    results: dict[str, PushResult] = {}
    for target in targets:
        repo = wiring.open_repository(cfg, target)
        try:
            results[target] = WalArchive(repo, source).push(path.name, data)
        finally:
            repo.store.close()
    return results


def wal_get(cfg: LoadedConfig, source: str, file_name: str, dest: Path) -> str:
    """Write archived `file_name` (PostgreSQL's %f) to `dest` (%p); returns the target it
    came from. NotFoundError when no target has it (PostgreSQL then ends recovery there)."""
    check_name(file_name)
    failures: list[RecoverydError] = []
    for target in _targets(cfg, source):
        try:
            repo = wiring.open_repository(cfg, target)
            try:
                data = _get_or_partial(WalArchive(repo, source), file_name)
            finally:
                repo.store.close()
        except NotFoundError:
            continue
        except RecoverydError as exc:  # damaged here, or the target unreachable: try the next
            failures.append(exc)
            continue
        _write_atomically(dest, data)
        return target
    if failures:
        raise failures[0]
    raise NotFoundError(f"WAL file {file_name} of source {source} is not archived")


def _write_atomically(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(f".{dest.name}.recoveryd-tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(dest)


def _get_or_partial(archive: WalArchive, file_name: str) -> bytes:
    """The archived file; for a segment never completed, the newest streamed part of it
    (`wal: {stream: true}`): recovery replays what it holds and ends there."""
    try:
        return archive.get(file_name)
    except NotFoundError:
        if not SEGMENT.match(file_name):
            raise
        return archive.get(f"{file_name}.partial")
