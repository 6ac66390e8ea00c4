"""build_source: one Source per configured kind, secrets resolved up front."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from recoveryd import config
from recoveryd.errors import SourceError
from recoveryd.sources.directory import DirectorySource
from recoveryd.sources.factory import build_source
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.mysql import MysqlSource
from recoveryd.sources.postgresql import PostgresSource
from recoveryd.sources.sqlite import SqliteSource


class RemoteStub:
    """A CommandRunner standing for an SSH runner (never started here)."""

    description = "ssh backup@db1:22"

    def start(self, argv: Sequence[str], **kw: object) -> object:
        raise AssertionError("not used")

    def run(self, argv: Sequence[str], **kw: object) -> tuple[int, bytes, str]:
        raise AssertionError("not used")


def _secrets(seen: list[str]) -> object:
    def resolve(ref: str) -> str:
        seen.append(ref)
        return f"resolved:{ref}"

    return resolve


def test_database_sources_get_their_resolved_password(tmp_path: Path) -> None:
    """PostgreSQL and MySQL sources are built with the password their `password_file`
    (or `password` reference) resolves to."""
    seen: list[str] = []
    pg = config.PostgresSource(
        kind="postgresql", dsn="host=db1 dbname=pop user=b", password_file="pw", targets=["t"]
    )
    my = config.MysqlSource(
        kind="mysql", dsn="mysql://b@db2/legal", password="env:LEGAL_PW", targets=["t"]
    )
    built_pg = build_source(
        "pop",
        pg,
        runner=LocalRunner(),
        resolve_secret=_secrets(seen),
        base_dir=tmp_path,  # type: ignore[arg-type]
    )
    built_my = build_source(
        "legal",
        my,
        runner=LocalRunner(),
        resolve_secret=_secrets(seen),
        base_dir=tmp_path,  # type: ignore[arg-type]
    )
    assert isinstance(built_pg, PostgresSource) and built_pg.name == "pop"
    assert isinstance(built_my, MysqlSource) and built_my.kind == "mysql"
    assert seen == ["pw", "env:LEGAL_PW"]
    assert built_pg._password == "resolved:pw"


def test_postgresql_jobs_default_to_the_cores_at_most_four(tmp_path: Path) -> None:
    """A PostgreSQL source without `jobs` dumps with as many processes as there are cores,
    at most 4; `jobs: 1` is one pg_dump stream."""
    import os

    def build(**kw: object) -> PostgresSource:
        pg = config.PostgresSource(kind="postgresql", dsn="dbname=pop", targets=["t"], **kw)  # type: ignore[arg-type]
        built = build_source("pop", pg, runner=LocalRunner(), resolve_secret=str, base_dir=tmp_path)
        assert isinstance(built, PostgresSource)
        return built

    assert build().jobs == max(1, min(4, os.cpu_count() or 1))
    assert build(jobs=1).jobs == 1
    assert build(jobs=6).jobs == 6


def test_file_sources_resolve_relative_paths_from_the_config_dir(tmp_path: Path) -> None:
    """Relative SQLite and directory paths are taken from the configuration's directory."""
    lite = config.SqliteSource(kind="sqlite", path="data/cache.db", targets=["t"])
    tree = config.DirectorySource(kind="directory", path="tiles", exclude=["*.tmp"], targets=["t"])
    s = build_source("c", lite, runner=LocalRunner(), resolve_secret=str, base_dir=tmp_path)
    d = build_source("d", tree, runner=LocalRunner(), resolve_secret=str, base_dir=tmp_path)
    assert isinstance(s, SqliteSource) and s.path == tmp_path / "data/cache.db"
    assert isinstance(d, DirectorySource) and d.path == str(tmp_path / "tiles")


def test_sqlite_over_ssh_is_refused_clearly(tmp_path: Path) -> None:
    """A SQLite source with a remote runner is a clear error naming the source."""
    lite = config.SqliteSource(kind="sqlite", path="/x.db", targets=["t"], via_ssh="db1")
    with pytest.raises(SourceError, match="source c: SQLite sources are read on this host"):
        build_source("c", lite, runner=RemoteStub(), resolve_secret=str, base_dir=tmp_path)  # type: ignore[arg-type]


def test_directory_over_ssh_keeps_the_remote_path(tmp_path: Path) -> None:
    """A directory read over SSH keeps its path as written (it is a path on that host)."""
    tree = config.DirectorySource(kind="directory", path="/srv/geo", targets=["t"])
    d = build_source("g", tree, runner=RemoteStub(), resolve_secret=str, base_dir=tmp_path)  # type: ignore[arg-type]
    assert isinstance(d, DirectorySource) and d.path == "/srv/geo"
