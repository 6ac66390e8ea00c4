"""Any changed byte of any stored object is detected, naming the snapshot and the object."""

from __future__ import annotations

import pytest

from recoveryd.errors import IntegrityError, KeyFileError
from recoveryd.repo import ChunkerParams, Repository
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import master, new_repo, snapshot, text_data

TINY = ChunkerParams(min_size=256, avg_size=512, max_size=2048)


def _flip_and_check(store: MemoryStore, sid: str, key: str, pos: int) -> None:
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
        with pytest.raises(IntegrityError) as err:
            repo.restore_stream(sid).read()
        assert err.value.obj == key
        assert err.value.snapshot == sid
    finally:
        store.objects[key] = original


@pytest.mark.parametrize(("cipher", "step"), [("aes-256-gcm", 1), ("sm4-gcm", 7)])
def test_every_single_byte_flip_is_detected(cipher: str, step: int) -> None:
    """Flipping any byte of any object makes verify --read-data and restore fail.

    Every byte with AES-256-GCM; every 7th byte (and all headers) with SM4-GCM, for time."""
    store = MemoryStore()
    repo = new_repo(store, cipher=cipher, params=TINY)
    sid = snapshot(repo, text_data(40))
    assert len([k for k in store.objects if k.startswith("data/")]) >= 2
    for key in sorted(store.objects):
        size = len(store.objects[key])
        for pos in sorted({*range(0, size, step), *range(32)} & set(range(size))):
            _flip_and_check(store, sid, key, pos)
    assert Repository.open(store, master()).verify(read_data=True).ok


def test_swapped_chunks_are_detected() -> None:
    """Two chunk objects swapped by name fail authentication: the AAD binds the object key."""
    store = MemoryStore()
    repo = new_repo(store, params=TINY)
    sid = snapshot(repo, text_data(60))
    a, b = sorted(k for k in store.objects if k.startswith("data/"))[:2]
    store.objects[a], store.objects[b] = store.objects[b], store.objects[a]
    report = repo.verify(read_data=True)
    assert {p.obj for p in report.problems} == {a, b}
    with pytest.raises(IntegrityError):
        repo.restore_stream(sid).read()


def test_missing_chunk_is_found_by_structure_check() -> None:
    """verify without --read-data still finds a deleted chunk, naming snapshot and object."""
    store = MemoryStore()
    repo = new_repo(store, params=TINY)
    sid = snapshot(repo, text_data(60))
    victim = sorted(k for k in store.objects if k.startswith("data/"))[0]
    del store.objects[victim]
    (problem,) = repo.verify().problems
    assert (problem.snapshot, problem.obj) == (sid, victim)
    assert "missing" in problem.message


def test_sample_verification_reads_some_data() -> None:
    """read_data="sample" downloads and checks a subset of chunks."""
    repo = new_repo(params=TINY)
    snapshot(repo, text_data(200))
    report = repo.verify(read_data="sample")
    assert report.ok
    assert report.bytes_read > 0
