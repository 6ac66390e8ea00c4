"""A source's `compression` (zstd or LZ4) through the repository: snapshots written with LZ4
restore, verify, copy and survive prune's repack; chunk ids are keyed hashes of the
plaintext, so zstd and LZ4 snapshots of the same data share their chunks; a chunk whose
compression this version does not know is refused clearly (what an older recoveryd does
with an LZ4 chunk)."""

from __future__ import annotations

import pytest

from recoveryd.errors import IntegrityError
from recoveryd.repo import Policy, Repository, SnapshotMeta, chunker, write_snapshot
from recoveryd.repo.chunker import Compression
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import (
    CONTENT_PREFIXES,
    LAYOUTS,
    TINY_PACKS,
    BytesReader,
    master,
    new_repo,
    text_data,
)


def backup(repo: Repository, data: bytes, compression: Compression, source: str = "src") -> str:
    meta = SnapshotMeta(source=source)
    return write_snapshot(BytesReader(data), [repo], meta, compression=compression)[0].id


def markers(repo: Repository, sid: str) -> set[int]:
    """The compression markers of the snapshot's stored chunks."""
    return {repo.chunks.read_payload(c.id)[0] for c in repo.manifest(sid).chunks}


def content_objects(store: MemoryStore) -> set[str]:
    return {o.key for p in CONTENT_PREFIXES for o in store.list(p)}


@pytest.mark.parametrize("pack_size", LAYOUTS)
@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
def test_an_lz4_snapshot_restores_identical_bytes(cipher: str, pack_size: int | None) -> None:
    """A snapshot written with `compression="lz4"` stores its chunks as LZ4 frames (marker
    2), restores to exactly the bytes read and passes verify --read-data, loose or packed,
    under either cipher, after the repository is opened again."""
    store = MemoryStore()
    repo = new_repo(store, cipher=cipher, pack_size=pack_size)
    data = text_data(5000)
    sid = backup(repo, data, "lz4")
    reopened = Repository.open(store, master(), name="t1")
    assert markers(reopened, sid) == {chunker.COMPRESSION_LZ4}
    with reopened.restore_stream(sid) as r:
        assert r.read() == data
    assert reopened.verify(read_data=True).ok


@pytest.mark.parametrize(("first", "second"), [("zstd", "lz4"), ("lz4", "zstd")])
def test_zstd_and_lz4_snapshots_of_the_same_data_share_their_chunks(
    first: Compression, second: Compression
) -> None:
    """A second snapshot of the same data with the other compression stores no new chunk
    (its chunks keep the first one's compression); a third, of changed data, stores its new
    chunks with its own; every snapshot restores and verifies."""
    store = MemoryStore()
    repo = new_repo(store, pack_size=TINY_PACKS)
    data = text_data(5000)
    one = backup(repo, data, first)
    objects = content_objects(store)
    two = write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="src"), compression=second)[
        0
    ]
    assert two.stored_size == 0
    assert content_objects(store) == objects
    assert markers(repo, two.id) == {chunker.COMPRESSION_ZSTD if first == "zstd" else 2}
    changed = data[:30000] + text_data(2000, seed=11) + data[30000:]
    three = backup(repo, changed, second)
    assert markers(repo, three) == {chunker.COMPRESSION_ZSTD, chunker.COMPRESSION_LZ4}
    for sid, expected in ((one, data), (two.id, data), (three, changed)):
        assert repo.restore_stream(sid).read() == expected
    assert repo.verify(read_data=True).ok


def test_copy_keeps_lz4_chunks_and_dedups_against_zstd_ones() -> None:
    """copy re-encrypts an LZ4 snapshot's chunks as they are (still LZ4) and stores none
    that the destination holds already, whichever compression stored them there."""
    src = new_repo(MemoryStore("src"))
    dest = new_repo(MemoryStore("dst"), cipher="sm4-gcm", key=master(5))
    data = text_data(4000)
    sid = backup(src, data, "lz4")
    assert src.copy_snapshot(sid, dest).stored_size > 0
    assert markers(dest, sid) == {chunker.COMPRESSION_LZ4}
    assert dest.restore_stream(sid).read() == data
    zstd_sid = backup(src, data, "zstd")
    assert src.copy_snapshot(zstd_sid, dest).stored_size == 0
    assert dest.verify(read_data=True).ok


def test_prune_repacks_lz4_chunks_unchanged() -> None:
    """When forgetting a snapshot leaves packs mostly unused, prune moves their live LZ4
    chunks into new packs as they are; the kept snapshot restores and verifies."""
    repo = new_repo(pack_size=TINY_PACKS)
    blocks = [text_data(120, seed=s) for s in range(40)]
    old = backup(repo, b"".join(blocks), "lz4")
    kept_data = b"".join(blocks[::3])
    kept = backup(repo, kept_data, "lz4")
    report = repo.forget({"src": Policy(keep_last=1)})
    assert report.forgotten == (old,)
    assert report.repacked > 0
    assert markers(repo, kept) == {chunker.COMPRESSION_LZ4}
    assert repo.restore_stream(kept).read() == kept_data
    assert repo.verify(read_data=True).ok


class _NewerChunker:
    """The chunker as a newer recoveryd's would be: chunks under a marker (9) this version
    does not know."""

    def __getattr__(self, name: str) -> object:
        return getattr(chunker, name)

    @staticmethod
    def compress_parts(data: memoryview, compression: Compression) -> chunker.Parts:
        return bytes([9]), bytes(data)


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_a_chunk_of_an_unknown_compression_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, pack_size: int | None
) -> None:
    """Chunks written with a compression this version does not know (as LZ4 chunks are to
    a recoveryd before it) leave the snapshot listed and its structure valid, but restore
    and verify --read-data name the object, the unknown marker and the upgrade."""
    repo = new_repo(pack_size=pack_size)
    data = text_data(3000)
    with monkeypatch.context() as m:
        m.setattr("recoveryd.repo.backup.chunker", _NewerChunker())
        sid = backup(repo, data, "zstd")
    assert [s.id for s in repo.snapshots()] == [sid]
    assert repo.verify().ok
    with pytest.raises(
        IntegrityError, match=r"unknown compression marker 9.*upgrade recoveryd"
    ) as e:
        repo.restore_stream(sid).read()
    assert e.value.obj is not None and e.value.obj in str(e.value)
    assert "damaged" not in str(e.value)  # an older reader, not a damaged object
    problems = repo.verify(read_data=True).problems
    assert problems
    assert all("unknown compression marker 9" in p.message for p in problems)
