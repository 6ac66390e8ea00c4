"""Build a Source from its configuration: the one place that knows every source kind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from recoveryd import config
from recoveryd.errors import SourceError
from recoveryd.sources.base import CommandRunner, Source
from recoveryd.sources.directory import DirectorySource
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.mysql import MysqlSource
from recoveryd.sources.postgresql import PostgresSource
from recoveryd.sources.sqlite import SqliteSource

SourceConfig = (
    config.PostgresSource | config.MysqlSource | config.SqliteSource | config.DirectorySource
)


def build_source(
    name: str,
    source: SourceConfig,
    *,
    runner: CommandRunner,
    resolve_secret: Callable[[str], str],
    base_dir: Path,
    tmp_dir: Path | None = None,
) -> Source:
    """The Source for `source` named `name`.

    `runner` runs the dump tools (local, or SSH for `via_ssh`); `resolve_secret` turns a
    `password_file` path or `password` reference into the password (resolved now, so a
    missing secret fails before any work starts); relative paths are taken from
    `base_dir` (the configuration file's directory); `tmp_dir` holds temporary copies
    (SQLite) and secret files (local tools). SQLite needs a local runner.
    """
    if isinstance(source, config.PostgresSource | config.MysqlSource):
        ref = source.password_file or source.password
        password = resolve_secret(ref) if ref else None
        if isinstance(source, config.PostgresSource):
            return PostgresSource(
                name,
                source.dsn,
                runner=runner,
                password=password,
                tmp_dir=tmp_dir,
                lock_wait_timeout=source.lock_wait_timeout,
                mode=source.mode,
                jobs=source.jobs or default_jobs(),
            )
        return MysqlSource(name, source.dsn, runner=runner, password=password, tmp_dir=tmp_dir)
    if isinstance(source, config.SqliteSource):
        if not isinstance(runner, LocalRunner):
            raise SourceError(
                f"source {name}: SQLite sources are read on this host; remove via_ssh "
                "and run recoveryd on the host that holds the database"
            )
        return SqliteSource(name, _resolve(base_dir, source.path), tmp_dir=tmp_dir)
    path = source.path
    if isinstance(runner, LocalRunner):
        path = str(_resolve(base_dir, path))
    return DirectorySource(name, path, runner=runner, exclude=source.exclude)


def default_jobs() -> int:
    """The number of cores, at most 4: the default `jobs` of a PostgreSQL source."""
    return max(1, min(4, os.cpu_count() or 1))


def _resolve(base_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p
