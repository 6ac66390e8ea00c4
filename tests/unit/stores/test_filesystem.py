"""Filesystem store specifics: atomic durable writes, temp files, key safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recoveryd.errors import PreconditionFailedError, StoreError
from recoveryd.stores.filesystem import TMP_PREFIX, FilesystemStore


@pytest.fixture
def fs(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "repo", "local")


def test_key_maps_to_a_file_under_the_root(fs: FilesystemStore) -> None:
    """Object key a/b/c is the file <root>/a/b/c (the layout FORMAT.md documents)."""
    fs.put("data/ab/abcdef", b"chunk")
    assert (fs.root / "data" / "ab" / "abcdef").read_bytes() == b"chunk"


def test_failed_write_leaves_neither_object_nor_temp_file(
    fs: FilesystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If fsync fails (disk error), the old object is intact and no temp file remains."""
    fs.put("index/x", b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StoreError, match=r"target local: cannot write index/x .*Input/output"):
        fs.put("index/x", b"new")
    monkeypatch.undo()
    assert fs.get("index/x") == b"old"
    assert sorted(p.name for p in (fs.root / "index").iterdir()) == ["x"]


def test_writes_fsync_file_and_directory(
    fs: FilesystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put fsyncs the data and the directory holding the new name (durable rename)."""
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    fs.put("data/first", b"x")  # directories exist now
    monkeypatch.setattr(os, "fsync", counting)
    fs.put("data/second", b"y")
    assert len(synced) == 2


def test_temp_files_are_never_listed(fs: FilesystemStore) -> None:
    """Leftovers of an interrupted write (.tmp-*) are invisible to list."""
    fs.put("data/a", b"x")
    (fs.root / "data" / f"{TMP_PREFIX}123").write_bytes(b"partial")
    assert [i.key for i in fs.list()] == ["data/a"]


@pytest.mark.parametrize(
    "key", ["", "/abs", "a//b", "../escape", "a/./b", "a/..", f"a/{TMP_PREFIX}x"]
)
def test_unsafe_keys_are_refused(fs: FilesystemStore, key: str) -> None:
    """Keys cannot escape the root or collide with temp files."""
    with pytest.raises(StoreError, match="invalid object key"):
        fs.put(key, b"x")


def test_if_absent_is_exclusive(fs: FilesystemStore) -> None:
    """The filesystem store supports real conditional writes (hard link, never overwrite)."""
    fs.put("locks/l", b"first", if_absent=True)
    with pytest.raises(PreconditionFailedError):
        fs.put("locks/l", b"second", if_absent=True)
    assert fs.get("locks/l") == b"first"
    assert [p.name for p in (fs.root / "locks").iterdir()] == ["l"]


def test_listing_a_missing_root_is_empty(tmp_path: Path) -> None:
    """A store whose directory does not exist yet lists nothing (it is created on first put)."""
    assert list(FilesystemStore(tmp_path / "absent", "x").list()) == []


def test_missing_parent_of_the_root_is_not_created(tmp_path: Path) -> None:
    """If the backup volume is not mounted, writes fail instead of filling the system disk."""
    store = FilesystemStore(tmp_path / "mnt" / "backup" / "repo", "local")
    with pytest.raises(StoreError, match=r"directory .*backup does not exist; create it or mount"):
        store.put("config", b"x")
    assert not (tmp_path / "mnt").exists()


def test_root_is_created_inside_an_existing_directory(tmp_path: Path) -> None:
    """A new repository directory is created on first write when its parent exists."""
    store = FilesystemStore(tmp_path / "repo", "local")
    store.put("data/ab/c", b"x")
    assert (tmp_path / "repo" / "data" / "ab" / "c").read_bytes() == b"x"
