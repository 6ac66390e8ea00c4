"""docs/FORMAT.md is precise enough to recover data without recoveryd."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import pytest

from recoveryd.repo import Repository, SnapshotMeta, generate_master_key, write_snapshot
from recoveryd.stores.filesystem import FilesystemStore
from tests.unit.repo.helpers import LAYOUTS, SMALL, TINY_PACKS, BytesReader, text_data

READER = Path(__file__).with_name("independent_reader.py")


def test_reader_imports_nothing_of_recoveryd() -> None:
    """The independent reader uses only the standard library, cryptography, zstandard and
    lz4."""
    tree = ast.parse(READER.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert "recoveryd" not in roots
    assert roots - set(sys.stdlib_module_names) == {"cryptography", "zstandard", "lz4"}


def _run_reader(*args: object) -> str:
    cmd = [sys.executable, str(READER), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("pack_size", LAYOUTS)
@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
def test_reader_reproduces_the_stream_byte_for_byte(
    tmp_path: Path, cipher: str, pack_size: int | None
) -> None:
    """Following FORMAT.md alone, a snapshot written by recoveryd (after a key rotation and a
    master-key rewrap) is restored identically from a filesystem target, from loose chunks
    (version 1) or from packs found through the index (version 2)."""
    key_path = tmp_path / "master.key"
    master = generate_master_key(key_path)
    root = tmp_path / "repo"
    store = FilesystemStore(root, "local")
    repo = Repository.init(
        store, master, cipher=cipher, name="local", chunker_params=SMALL, pack_size=pack_size
    )
    data = text_data(20000) + random.Random(3).randbytes(40000)  # text, incompressible tail
    first = write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="population"))[0].id
    repo.rotate_data_key()
    data2 = data[:1000] + b"changed" + data[1000:]
    second = write_snapshot(BytesReader(data2), [repo], SnapshotMeta(source="population"))[0].id
    new_key = tmp_path / "master2.key"
    repo.rewrap(generate_master_key(new_key))

    listing = subprocess.run(
        [sys.executable, str(READER), str(new_key), str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert first in listing and second in listing
    for sid, expected in ((first, data), (second, data2)):
        out = tmp_path / f"{sid}.out"
        subprocess.run(
            [sys.executable, str(READER), str(new_key), str(root), sid, str(out)], check=True
        )
        assert out.read_bytes() == expected
    if pack_size is not None:
        assert not (root / "data").exists()
        checked = _run_reader(new_key, root, "--packs").split()
        assert len(checked) == sum(1 for _ in (root / "packs").glob("*/*")) > 1


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_reader_reads_lz4_chunks_beside_zstd_ones(tmp_path: Path, pack_size: int | None) -> None:
    """Following FORMAT.md alone, an LZ4 snapshot (marker 2), a zstd snapshot of changed data
    sharing most of its chunks, and incompressible chunks (marker 0) are restored
    identically, loose or packed."""
    key_path = tmp_path / "master.key"
    root = tmp_path / "repo"
    repo = Repository.init(
        FilesystemStore(root, "local"), generate_master_key(key_path), name="local",
        chunker_params=SMALL, pack_size=pack_size,
    )  # fmt: skip
    data = text_data(20000) + random.Random(8).randbytes(40000)
    meta = SnapshotMeta(source="population")
    lz4 = write_snapshot(BytesReader(data), [repo], meta, compression="lz4")[0].id
    payloads = [repo.chunks.read_payload(c.id) for c in repo.manifest(lz4).chunks]
    assert {p[0] for p in payloads} == {0, 2}
    data2 = data[:70000] + b"changed" + data[70000:]
    meta = SnapshotMeta(source="population")
    zstd = write_snapshot(BytesReader(data2), [repo], meta, compression="zstd")[0].id
    assert 1 in {repo.chunks.read_payload(c.id)[0] for c in repo.manifest(zstd).chunks}
    for sid, expected in ((lz4, data), (zstd, data2)):
        out = tmp_path / f"{sid}.out"
        _run_reader(key_path, root, sid, out)
        assert out.read_bytes() == expected


def test_reader_and_recoveryd_read_a_mixed_repository(tmp_path: Path) -> None:
    """A version 1 repository (loose chunks) upgraded to packs holds both; recoveryd and the
    independent reader restore the old snapshot and the new one (whose unchanged chunks
    stay loose) byte for byte, and verify --read-data passes."""
    key_path = tmp_path / "master.key"
    master = generate_master_key(key_path)
    root = tmp_path / "repo"
    store = FilesystemStore(root, "local")
    repo = Repository.init(store, master, name="local", chunker_params=SMALL, pack_size=None)
    data = text_data(20000)
    old = write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="population"))[0].id
    assert not (root / "packs").exists()
    repo.enable_packs(TINY_PACKS)
    data2 = data[:50000] + text_data(3000, seed=9) + data[50000:]
    new = write_snapshot(BytesReader(data2), [repo], SnapshotMeta(source="population"))[0].id
    assert (root / "packs").is_dir() and (root / "data").is_dir()
    reopened = Repository.open(FilesystemStore(root, "local"), master, name="local")
    assert reopened.config.pack_size == TINY_PACKS
    assert reopened.verify(read_data=True).ok
    for sid, expected in ((old, data), (new, data2)):
        assert reopened.restore_stream(sid).read() == expected
        out = tmp_path / f"{sid}.out"
        _run_reader(key_path, root, sid, out)
        assert out.read_bytes() == expected


def test_reader_writes_each_part_of_a_snapshot_made_of_parts(tmp_path: Path) -> None:
    """Following FORMAT.md alone, a snapshot made of parts (manifest version 2) is restored
    as one file per part, each identical to the stream it was made from, beside a version-1
    snapshot in the same repository."""
    from recoveryd.sources.base import MultiStream, SourceInfo

    key_path = tmp_path / "master.key"
    root = tmp_path / "repo"
    repo = Repository.init(
        FilesystemStore(root, "local"), generate_master_key(key_path), name="local",
        chunker_params=SMALL,
    )  # fmt: skip
    parts = {"pre-data": text_data(300), "data-1": random.Random(4).randbytes(50_000),
             "data-2": text_data(9000, 2), "post-data": b"CREATE INDEX"}  # fmt: skip
    info = SourceInfo("postgresql", "pg_dump-custom")
    multi = MultiStream(info, [(n, BytesReader(d)) for n, d in parts.items()], lambda ok: None)
    sid = write_snapshot(multi, [repo], SnapshotMeta(source="registry"))[0].id
    single = write_snapshot(BytesReader(b"one stream"), [repo], SnapshotMeta(source="x"))[0].id

    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(READER), str(key_path), str(root), sid, str(out)], check=True
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == parts
    subprocess.run(
        [sys.executable, str(READER), str(key_path), str(root), single, str(tmp_path / "one")],
        check=True,
    )
    assert (tmp_path / "one").read_bytes() == b"one stream"


def test_reader_reads_an_archived_wal_file(tmp_path: Path) -> None:
    """Following FORMAT.md alone, a WAL file archived by `wal-push` comes back identical."""
    from recoveryd.repo.wal import WalArchive

    key_path = tmp_path / "master.key"
    master = generate_master_key(key_path)
    root = tmp_path / "repo"
    repo = Repository.init(FilesystemStore(root, "local"), master, name="local")
    segment = random.Random(5).randbytes(100_000) + bytes(900_000)
    WalArchive(repo, "registry").push("000000010000000000000007", segment)
    out = tmp_path / "segment"
    subprocess.run(
        [sys.executable, str(READER), str(key_path), str(root), "--wal",
         "registry/000000010000000000000007", str(out)],
        check=True,
    )  # fmt: skip
    assert out.read_bytes() == segment


def test_reader_reads_an_archived_binary_log(tmp_path: Path) -> None:
    """Following FORMAT.md alone, a MariaDB binary log archived by the binlog stream
    (`binlog/<source>/<file>`, sealed like a WAL file) comes back identical."""
    from recoveryd.repo.wal import BinlogArchive

    key_path = tmp_path / "master.key"
    master = generate_master_key(key_path)
    root = tmp_path / "repo"
    repo = Repository.init(FilesystemStore(root, "local"), master, name="local")
    binlog = b"\xfebin" + random.Random(6).randbytes(50_000)
    BinlogArchive(repo, "registry").push("binlog.000042", binlog)
    out = tmp_path / "binlog"
    subprocess.run(
        [sys.executable, str(READER), str(key_path), str(root), "--binlog",
         "registry/binlog.000042", str(out)],
        check=True,
    )  # fmt: skip
    assert out.read_bytes() == binlog
