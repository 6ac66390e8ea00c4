"""Any changed byte of any stored object is detected, naming the snapshot and the object."""

from __future__ import annotations

import pytest

from recoveryd.errors import IntegrityError, KeyFileError
from recoveryd.repo import ChunkerParams, Repository
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import LAYOUTS, master, new_repo, snapshot, text_data

TINY = ChunkerParams(min_size=256, avg_size=512, max_size=2048)


def _blob_end(blob: bytes) -> int:
    """Where a pack's blobs end and its header begins (from its 4-byte trailer)."""
    return len(blob) - 4 - int.from_bytes(blob[-4:], "big")


def _flip_and_check(store: MemoryStore, sid: str, key: str, pos: int) -> None:
    """A flipped byte fails verify --read-data naming `key`; restore fails too unless the
    byte is in a pack's header (restore reads blobs by their indexed offsets, and the
    header only repeats the index: the snapshot's data is intact)."""
    original = store.objects[key]
    store.objects[key] = original[:pos] + bytes([original[pos] ^ 0x01]) + original[pos + 1 :]
    try:
        try:
            repo = Repository.open(store, master())
        except (IntegrityError, KeyFileError):
            return  # the config or a key object: nothing opens
        report = repo.verify(read_data=True)
        assert not report.ok, f"flip of {key}[{pos}] not seen by verify"
        assert any(p.obj == key for p in report.problems)
        if key.startswith("packs/") and pos >= _blob_end(original):
            return
        with pytest.raises(IntegrityError) as err:
            repo.restore_stream(sid).read()
        assert err.value.obj == key
        assert err.value.snapshot == sid
    finally:
        store.objects[key] = original


@pytest.mark.parametrize("pack_size", LAYOUTS)
@pytest.mark.parametrize(("cipher", "step"), [("aes-256-gcm", 1), ("sm4-gcm", 7)])
def test_every_single_byte_flip_is_detected(cipher: str, step: int, pack_size: int | None) -> None:
    """Flipping any byte of any object (chunk, pack, index, manifest, key, config) makes
    verify --read-data fail, and restore too where the byte is data it reads.

    Every byte with AES-256-GCM; every 7th byte (and all headers) with SM4-GCM, for time."""
    store = MemoryStore()
    repo = new_repo(store, cipher=cipher, params=TINY, pack_size=pack_size)
    sid = snapshot(repo, text_data(40))
    prefix = "data/" if pack_size is None else "packs/"
    assert len([k for k in store.objects if k.startswith(prefix)]) >= (
        2 if prefix == "data/" else 1
    )
    for key in sorted(store.objects):
        size = len(store.objects[key])
        for pos in sorted({*range(0, size, step), *range(32)} & set(range(size))):
            _flip_and_check(store, sid, key, pos)
    assert Repository.open(store, master()).verify(read_data=True).ok


def test_swapped_chunks_are_detected() -> None:
    """Two chunk objects swapped by name fail authentication: the AAD binds the object key."""
    store = MemoryStore()
    repo = new_repo(store, params=TINY, pack_size=None)
    sid = snapshot(repo, text_data(60))
    a, b = sorted(k for k in store.objects if k.startswith("data/"))[:2]
    store.objects[a], store.objects[b] = store.objects[b], store.objects[a]
    report = repo.verify(read_data=True)
    assert {p.obj for p in report.problems} == {a, b}
    with pytest.raises(IntegrityError):
        repo.restore_stream(sid).read()


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_missing_chunk_is_found_by_structure_check(pack_size: int | None) -> None:
    """verify without --read-data still finds a deleted chunk (or pack), naming snapshot and
    object."""
    store = MemoryStore()
    repo = new_repo(store, params=TINY, pack_size=pack_size)
    sid = snapshot(repo, text_data(60))
    victim = sorted(k for k in store.objects if k.startswith(("data/", "packs/")))[0]
    del store.objects[victim]
    problems = repo.verify().problems
    assert problems
    assert {(p.snapshot, p.obj) for p in problems} == {(sid, victim)}
    assert all("missing" in p.message for p in problems)


def test_swapped_blobs_inside_a_pack_are_detected() -> None:
    """An index entry pointed at another chunk's blob fails authentication: each blob is
    bound to its own chunk id, wherever it sits."""
    from recoveryd.repo.crypto import ObjectType
    from recoveryd.repo.packs import Blob, encode_index

    store = MemoryStore()
    repo = new_repo(store, params=TINY)
    sid = snapshot(repo, text_data(60))
    (iid,) = [k for k in store.objects if k.startswith("index/")]
    index = repo.chunks.load_index()
    pid, blobs = next(iter(index.packs.items()))
    a, b = blobs[0], blobs[1]
    swapped = [Blob(a.id, b.offset, b.length), Blob(b.id, a.offset, a.length), *blobs[2:]]
    repo.put_object(iid, ObjectType.INDEX, encode_index({**index.packs, pid: swapped}))
    report = Repository.open(store, master()).verify(read_data=True)
    assert not report.ok
    assert {p.obj for p in report.problems} == {f"packs/{pid[:2]}/{pid}"}
    with pytest.raises(IntegrityError):
        Repository.open(store, master()).restore_stream(sid).read()


def test_sample_verification_reads_some_data() -> None:
    """read_data="sample" downloads and checks a subset of chunks."""
    repo = new_repo(params=TINY)
    snapshot(repo, text_data(200))
    report = repo.verify(read_data="sample")
    assert report.ok
    assert report.bytes_read > 0


def test_a_damaged_index_is_named_by_every_read_after_the_reload_that_found_it() -> None:
    """Chunks not in the cached index trigger one reload of the index; when that reload
    finds an index object damaged, every read that missed (restore reads chunks in
    parallel) names that index object, not a "missing" loose chunk."""
    store = MemoryStore()
    writer = new_repo(store, params=TINY, pack_size=LAYOUTS[1])
    reader = Repository.open(store, master())
    reader.chunks.index()  # cached before the snapshot below exists: every chunk misses
    sid = snapshot(writer, text_data(40))
    (key,) = [k for k in store.objects if k.startswith("index/")]
    original = store.objects[key]
    store.objects[key] = original[:-1] + bytes([original[-1] ^ 0x01])
    chunks = reader.manifest(sid).chunks
    assert len(chunks) >= 3
    for chunk in chunks[:3]:
        with pytest.raises(IntegrityError) as err:
            reader.chunks.read_payload(chunk.id, snapshot=sid)
        assert err.value.obj == key
