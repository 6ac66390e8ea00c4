"""Settings -> Source through the sources factory, with secrets resolved by reference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recoveryd.config import DirectorySource, MysqlSource, PostgresSource, SqliteSource
from recoveryd.secrets import resolve_secret

if TYPE_CHECKING:
    from recoveryd.sources.base import CommandRunner, Source

Settings = PostgresSource | MysqlSource | SqliteSource | DirectorySource


def build(
    name: str,
    settings: Settings,
    *,
    base_dir: Path,
    runner: CommandRunner | None,
    tmp_dir: Path | None = None,
) -> Source:
    """The Source for `settings`; local unless `runner` says otherwise.

    The password reference (`password_file` or `password`) is resolved now, so
    a missing secret fails with the setting's name before any work starts.
    """
    from recoveryd.sources.factory import build_source
    from recoveryd.sources.local import LocalRunner

    key = "password_file" if getattr(settings, "password_file", None) else "password"

    def secret(ref: str) -> str:
        return resolve_secret(ref, base_dir, setting=f"sources.{name}.{key}")

    return build_source(
        name,
        settings,
        runner=runner or LocalRunner(),
        resolve_secret=secret,
        base_dir=base_dir,
        tmp_dir=tmp_dir,
    )
