"""A source's `compression: lz4` through the command line, to a filesystem target: the
snapshot's chunks are LZ4, `verify --read-data` passes, the restore is identical; switched
back to zstd, a backup of the same data stores nothing new, and every snapshot restores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recoveryd.repo import Repository, load_master_key
from recoveryd.repo.chunker import COMPRESSION_LZ4, COMPRESSION_ZSTD
from recoveryd.stores.filesystem import FilesystemStore
from tests.e2e.conftest import Deployment, fs_target
from tests.e2e.test_roundtrip import make_tree, tree_state
from tests.unit.repo.helpers import text_data


def _source(path: Path, compression: str) -> dict[str, Any]:
    return {
        "kind": "directory",
        "path": str(path),
        "targets": ["local"],
        "compression": compression,
    }


def _markers(d: Deployment, store: Path, sid: str) -> set[int]:
    """The compression markers of the snapshot's stored chunks."""
    repo = Repository.open(FilesystemStore(store, "local"), load_master_key(d.key_file))
    return {repo.chunks.read_payload(c.id)[0] for c in repo.manifest(sid).chunks}


def _restored(d: Deployment, sid: str, dest: Path) -> dict[str, tuple[Any, ...]]:
    d.cli("restore", sid, "--to", str(dest)).expect(0)
    return tree_state(dest)


def test_an_lz4_directory_source_round_trips_and_shares_chunks_with_zstd(
    deployment: Deployment, tmp_path: Path
) -> None:
    """`compression: lz4` backs a directory up as LZ4 chunks that verify and restore to the
    same tree; the same tree backed up again with `compression: zstd` stores no new chunk
    (stored size 0); with a file added, the next snapshot's new chunks are zstd, beside
    the LZ4 ones it shares with the first; all three restore."""
    src, store = tmp_path / "tiles", tmp_path / "store"
    src.mkdir()
    make_tree(src)  # mostly incompressible tiles: stored chunks (marker 0)
    (src / "registry.tsv").write_bytes(text_data(60_000))  # compressible rows, a few chunks
    targets = {"local": fs_target(store)}
    deployment.configure(targets=targets, sources={"tiles": _source(src, "lz4")})
    expected = tree_state(src)

    (first,) = deployment.backup()
    assert COMPRESSION_LZ4 in _markers(deployment, store, first["id"])
    assert COMPRESSION_ZSTD not in _markers(deployment, store, first["id"])
    deployment.cli("verify", "--read-data", first["id"]).expect(0)
    assert _restored(deployment, first["id"], tmp_path / "r1") == expected

    deployment.configure(sources={"tiles": _source(src, "zstd")}, init=False)
    (second,) = deployment.backup()
    assert second["stored_size"] == 0
    assert _markers(deployment, store, second["id"]) == _markers(deployment, store, first["id"])

    (src / "zz-changes.tsv").write_bytes(text_data(30_000, seed=3))  # last in the tar stream
    changed = tree_state(src)
    (third,) = deployment.backup()
    assert 0 < third["stored_size"] < first["stored_size"]
    assert {COMPRESSION_LZ4, COMPRESSION_ZSTD} <= _markers(deployment, store, third["id"])
    deployment.cli("verify", "--read-data").expect(0)
    assert _restored(deployment, second["id"], tmp_path / "r2") == expected
    assert _restored(deployment, third["id"], tmp_path / "r3") == changed
