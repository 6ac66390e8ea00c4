"""Snapshots go in and come back out byte for byte, deduplicated, under either cipher."""

from __future__ import annotations

import os

import pytest

from recoveryd.errors import (
    AmbiguousSnapshotError,
    KeyFileError,
    RecoverydError,
    SnapshotNotFoundError,
)
from recoveryd.repo import Repository, SnapshotMeta, write_snapshot
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import BytesReader, master, new_repo, snapshot, text_data


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
def test_round_trip_restores_identical_bytes(cipher: str) -> None:
    """A snapshot restores to exactly the bytes that were read, with AES-256-GCM and SM4-GCM."""
    store = MemoryStore()
    repo = new_repo(store, cipher=cipher)
    data = text_data(5000)
    sid = snapshot(repo, data)
    reopened = Repository.open(store, master(), name="t1")
    assert reopened.config.cipher == repo.config.cipher
    with reopened.restore_stream(sid) as r:
        assert r.read() == data
    assert reopened.verify(read_data=True).ok


def test_listing_comes_from_the_store_alone() -> None:
    """With only the store and the master key, snapshots are listed with their metadata."""
    store = MemoryStore()
    repo = new_repo(store)
    data = text_data(2000)
    sid = snapshot(repo, data, source="population")
    (info,) = Repository.open(store, master(), name="t1").snapshots()
    assert (info.id, info.source, info.kind, info.size) == (
        sid,
        "population",
        "directory",
        len(data),
    )
    assert info.stored_size > 0
    assert info.targets == ("t1",)
    m = Repository.open(store, master()).manifest(sid)
    assert m.consistency == {"lsn": "0/1"}
    assert m.engine_version == "1.0"
    assert m.hostname
    assert m.tool_version.startswith("recoveryd ")


def test_small_reads_and_empty_snapshot() -> None:
    """The restore reader honours small read sizes; an empty stream is a valid snapshot."""
    repo = new_repo()
    data = text_data(1000)
    sid = snapshot(repo, data)
    with repo.restore_stream(sid) as r:
        parts = []
        while part := r.read(777):
            assert len(part) <= 777
            parts.append(part)
    assert b"".join(parts) == data
    empty = snapshot(repo, b"")
    assert repo.restore_stream(empty).read() == b""


def test_views_lend_the_stream_and_reads_span_chunks() -> None:
    """`read_view(n)` lends at most n bytes of one chunk at a time without copying, and
    the views together are the stream; `read(n)` still returns exactly n bytes across
    chunk boundaries until the end."""
    repo = new_repo()
    data = text_data(3000)
    sid = snapshot(repo, data)
    views = []
    with repo.restore_stream(sid) as r:
        while view := r.read_view(5000):
            assert 0 < len(view) <= 5000
            views.append(bytes(view))
    assert len(views) > len(repo.manifest(sid).chunks)  # chunks are split at n, not joined
    assert b"".join(views) == data
    with repo.restore_stream(sid) as r:
        big = 3 * 16384  # several chunks (SMALL: at most 16 KiB each)
        parts = [r.read(big) for _ in range(len(data) // big)]
        assert all(len(p) == big for p in parts)
        rest = r.read()
    assert b"".join([*parts, rest]) == data


def test_one_read_feeds_every_target() -> None:
    """One pass over the source writes the same snapshot id to every target, each restorable."""
    a, b = new_repo(MemoryStore("a")), new_repo(MemoryStore("b"), cipher="sm4-gcm")
    data = text_data(3000)
    reader = BytesReader(data)
    infos = write_snapshot(reader, [a, b], SnapshotMeta(source="s"))
    assert reader.finished
    assert infos[0].id == infos[1].id
    assert a.restore_stream(infos[0].id).read() == data
    assert b.restore_stream(infos[1].id).read() == data


def test_second_snapshot_of_nearly_same_data_stores_little() -> None:
    """Content-defined chunks: changing a small contiguous range stores only a few chunks."""
    repo = new_repo()
    data = text_data(40000)
    first = repo.snapshots()
    snapshot(repo, data)
    lines = data.split(b"\n")
    for i in range(20000, 20100):
        lines[i] = lines[i].upper()
    changed = b"\n".join(lines) + text_data(400, seed=99)
    snapshot(repo, changed)
    first, second = repo.snapshots()
    assert second.stored_size < 0.10 * first.stored_size


def test_unique_prefix_resolves_and_unknown_is_clear() -> None:
    """Snapshots are addressed by id or unique prefix; an unknown id is a clear error."""
    repo = new_repo()
    sid = snapshot(repo, b"hello")
    assert repo.resolve(sid[:6]) == sid
    with pytest.raises(RecoverydError, match="not found"):
        repo.resolve("zzzz")


def test_unknown_and_ambiguous_snapshots_are_typed_errors() -> None:
    """An id no snapshot has is a SnapshotNotFoundError; a prefix several snapshots share is
    an AmbiguousSnapshotError asking for more digits (callers tell them apart by type)."""
    repo = new_repo()
    ids: list[str] = []
    while not (shared := _shared_prefix(ids)):
        ids.append(snapshot(repo, os.urandom(64)))
    with pytest.raises(AmbiguousSnapshotError, match="give more digits"):
        repo.resolve(shared)
    with pytest.raises(SnapshotNotFoundError, match="not found"):
        repo.resolve("zzzz")


def _shared_prefix(ids: list[str]) -> str:
    """A first character two of `ids` start with, or ''."""
    firsts = [i[0] for i in ids]
    return next((c for c in firsts if firsts.count(c) > 1), "")


def test_wrong_master_key_is_refused_clearly() -> None:
    """Opening a repository with another master key says so (exit 2), naming the fingerprint."""
    store = MemoryStore()
    new_repo(store)
    with pytest.raises(KeyFileError, match="does not open this repository"):
        Repository.open(store, master(2))


def test_init_refuses_an_existing_repository() -> None:
    """init never overwrites a repository; open_or_init opens it."""
    store = MemoryStore()
    repo = new_repo(store)
    with pytest.raises(RecoverydError, match="already exists"):
        new_repo(store)
    assert Repository.open_or_init(store, master()).config.id == repo.config.id


def test_rotation_keeps_old_snapshots_restorable_and_dedup() -> None:
    """After rotate_data_key new objects use the new key, old snapshots restore, dedup holds."""
    store = MemoryStore()
    repo = new_repo(store)
    data = text_data(5000)
    old = snapshot(repo, data)
    before = repo.current_key.id
    new_key = repo.rotate_data_key()
    assert new_key.id != before
    new = snapshot(repo, data)
    reopened = Repository.open(store, master())
    assert reopened.current_key.id == new_key.id
    assert reopened.restore_stream(old).read() == data
    assert reopened.restore_stream(new).read() == data
    assert reopened.snapshots()[1].stored_size == 0  # same chunks, same ids after rotation
    assert reopened.verify(read_data=True).ok


def test_rewrap_moves_the_repository_to_a_new_master_key() -> None:
    """After rewrap only the new master key opens the repository; data still restores."""
    store = MemoryStore()
    repo = new_repo(store)
    repo.rotate_data_key()
    data = os.urandom(10000)
    sid = snapshot(repo, data)
    repo.rewrap(master(3))
    with pytest.raises(KeyFileError):
        Repository.open(store, master())
    assert Repository.open(store, master(3)).restore_stream(sid).read() == data


def test_copy_reencrypts_and_dedups_in_the_destination() -> None:
    """copy_snapshot re-encrypts under the destination's keys; copying again adds nothing."""
    src = new_repo(MemoryStore("src"))
    dest = new_repo(MemoryStore("dst"), cipher="sm4-gcm", key=master(5))
    data = text_data(4000)
    sid = snapshot(src, data)
    info = src.copy_snapshot(sid, dest)
    assert info.id == sid and info.stored_size > 0
    assert dest.restore_stream(sid).read() == data
    assert dest.verify(read_data=True).ok
    again = src.copy_snapshot(sid, dest)
    assert again.id == sid
    sid2 = snapshot(src, data)
    assert src.copy_snapshot(sid2, dest).stored_size == 0


def test_a_key_rotated_by_another_process_is_picked_up() -> None:
    """A long-running process reads snapshots sealed with a data key added after it opened."""
    store = MemoryStore()
    daemon_view = new_repo(store)
    other = Repository.open(store, master())
    other.rotate_data_key()
    data = text_data(500)
    sid = snapshot(other, data)
    assert daemon_view.restore_stream(sid).read() == data


def test_interrupted_rewrap_is_resumed_with_the_old_master_key() -> None:
    """If rewrap stops half way, running it again with the old key finishes the move."""
    from recoveryd.repo import keys as keymod

    store = MemoryStore()
    repo = new_repo(store)
    data = text_data(500)
    old_sid = snapshot(repo, data)
    repo.rotate_data_key()
    new_sid = snapshot(repo, data[::-1])
    rotated = repo.data_keys[1]  # rewrap moves the key that seals `config` last
    assert rotated.id != repo.config_key_id
    store.put(rotated.object_key, keymod.wrap(rotated, master(9)))  # interrupted after one
    Repository.open(store, master()).rewrap(master(9))
    moved = Repository.open(store, master(9))
    assert moved.restore_stream(old_sid).read() == data
    assert moved.restore_stream(new_sid).read() == data[::-1]
