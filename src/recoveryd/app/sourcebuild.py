"""Settings -> Source, used until (and where) `recoveryd.sources.factory` is not available.

Resolves the password reference of database sources (never the value in the
file) and passes the runner (local, or SSH for `via_ssh`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoveryd.config import DirectorySource, MysqlSource, PostgresSource, SqliteSource
from recoveryd.errors import ConfigError
from recoveryd.secrets import resolve_secret

if TYPE_CHECKING:
    from recoveryd.sources.base import CommandRunner, Source

Settings = PostgresSource | MysqlSource | SqliteSource | DirectorySource


def build(name: str, settings: Settings, *, base_dir: Path, runner: CommandRunner | None) -> Source:
    """The Source for `settings`; via the sources factory when the package provides one."""
    try:
        factory = importlib.import_module("recoveryd.sources.factory")
    except ImportError:
        factory = None
    if factory is not None:
        source: Source = factory.build_source(name, settings, base_dir=base_dir, runner=runner)
        return source
    return _direct(name, settings, base_dir, runner)


def password_of(name: str, settings: PostgresSource | MysqlSource, base_dir: Path) -> str | None:
    """The resolved password of a database source, or None when none is configured."""
    if settings.password_file is not None:
        return resolve_secret(
            settings.password_file, base_dir, setting=f"sources.{name}.password_file"
        )
    if settings.password is not None:
        return resolve_secret(settings.password, base_dir, setting=f"sources.{name}.password")
    return None


def _path(value: str, base_dir: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base_dir / p


def _direct(name: str, s: Settings, base_dir: Path, runner: CommandRunner | None) -> Source:
    from recoveryd.sources.local import LocalRunner

    run: Any = runner or LocalRunner()
    if isinstance(s, SqliteSource):
        from recoveryd.sources.sqlite import SqliteSource as Sqlite

        return Sqlite(name, _path(s.path, base_dir))
    if isinstance(s, DirectorySource):
        from recoveryd.sources.directory import DirectorySource as Directory

        return Directory(name, str(_path(s.path, base_dir)), runner=run, exclude=s.exclude)
    if isinstance(s, PostgresSource):
        from recoveryd.sources.postgresql import PostgresSource as Postgres

        return Postgres(name, s.dsn, runner=run, password=password_of(name, s, base_dir))
    try:
        mysql = importlib.import_module("recoveryd.sources.mysql")
    except ImportError:
        raise ConfigError(
            f"sources.{name}: mysql sources are not available in this build"
        ) from None
    source: Source = mysql.MysqlSource(
        name, s.dsn, runner=run, password=password_of(name, s, base_dir)
    )
    return source
