"""A failed snapshot leaves nothing listed; prune applies retention and collects leftovers."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from recoveryd.errors import SourceError, StoreError
from recoveryd.repo import Policy, Repository, SnapshotMeta, write_snapshot
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import (
    CONTENT_PREFIXES,
    LAYOUTS,
    BytesReader,
    Clock,
    master,
    new_repo,
    snapshot,
    text_data,
)


def _data_keys(store: MemoryStore) -> set[str]:
    """Objects holding chunks: loose chunks and packs."""
    return {k for k in store.objects if k.startswith(CONTENT_PREFIXES)}


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_dump_failure_commits_nothing_and_prune_cleans_up(pack_size: int | None) -> None:
    """When the dump tool fails at the end, no manifest is written; prune deletes its chunks
    (loose chunks, or the packs it uploaded that no index names)."""
    store = MemoryStore()
    repo = new_repo(store, pack_size=pack_size)
    good = snapshot(repo, text_data(2000, seed=1))
    kept = _data_keys(store)
    reader = BytesReader(text_data(20000, seed=2), fail_finish=True)
    with pytest.raises(SourceError):
        write_snapshot(reader, [repo], SnapshotMeta(source="src"))
    assert reader.aborted
    assert [s.id for s in Repository.open(store, master()).snapshots()] == [good]
    leftovers = _data_keys(store) - kept
    assert leftovers  # chunks of the failed run
    assert not any(k.startswith("locks/") for k in store.objects)
    report = repo.prune()
    assert report.deleted_objects == len(leftovers)
    assert _data_keys(store) == kept
    assert repo.verify(read_data=True).ok


class _FailingStore(MemoryStore):
    """Fails uploads after `limit` puts, like a store that went away mid-backup."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, data: bytes, **kw: object) -> None:  # type: ignore[override]
        if key.startswith(CONTENT_PREFIXES) and self.puts >= self.limit:
            raise StoreError("store memory: connection reset")
        super().put(key, data, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_upload_failure_aborts_the_source_and_commits_nothing(pack_size: int | None) -> None:
    """A store error mid-stream aborts the dump, writes no manifest and re-raises."""
    store = _FailingStore(limit=10**9)
    repo = new_repo(store, pack_size=pack_size)
    store.limit = store.puts + 2
    reader = BytesReader(text_data(20000))
    with pytest.raises(StoreError):
        write_snapshot(reader, [repo], SnapshotMeta(source="src"))
    assert reader.aborted and not reader.finished
    assert repo.snapshots() == []
    store.limit = 10**9
    repo.prune()
    assert _data_keys(store) == set()


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_forget_applies_policy_per_source_and_prunes(pack_size: int | None) -> None:
    """forget keeps what the policy keeps per source, deletes the rest and their unique chunks
    (in a pack repository: the packs they alone used)."""
    clock = Clock()
    store = MemoryStore()
    repo = new_repo(store, clock=clock, pack_size=pack_size)
    ids = []
    for day in range(5):
        reader = BytesReader(text_data(500, seed=day))
        meta = SnapshotMeta(source="a", clock=clock)
        ids.append(write_snapshot(reader, [repo], meta)[0].id)
        clock.advance(days=1)
    other = snapshot(repo, text_data(100, seed=50), source="b")
    dry = repo.forget({"a": Policy(keep_last=2)}, dry_run=True)
    assert set(dry.forgotten) == set(ids[:3])
    assert len(repo.snapshots()) == 6
    report = repo.forget({"a": Policy(keep_last=2)})
    assert set(report.kept) == {ids[3], ids[4], other}
    assert {s.id for s in repo.snapshots()} == {ids[3], ids[4], other}
    assert report.deleted_objects > 0
    live = {c.id for s in repo.snapshots() for c in repo.manifest(s.id).chunks}
    holders = {repo.chunks.object_of(c) for c in live}
    assert _data_keys(store) == holders  # every object left holds a live chunk
    if pack_size is None:
        assert holders == {f"data/{c[:2]}/{c}" for c in live}
    assert repo.verify(read_data=True).ok


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_object_lock_retains_and_extends_and_prune_skips_locked(pack_size: int | None) -> None:
    """With Object Lock, new objects get retention, reused chunks are extended (their packs,
    in a pack repository), prune skips them."""
    clock = Clock()
    store = MemoryStore(object_lock=True, clock=clock)
    repo = new_repo(store, clock=clock, retention_days=10, pack_size=pack_size)
    data = text_data(2000)
    first = snapshot(repo, data)
    chunks = _data_keys(store)
    assert all(store.retention[k].until == clock.now + timedelta(days=10) for k in chunks)
    assert store.retention[f"snapshots/{first}"].mode == "compliance"
    clock.advance(days=5)
    snapshot(repo, data)
    assert all(store.retention[k].until == clock.now + timedelta(days=10) for k in chunks)
    report = repo.forget({"src": Policy(keep_last=1)})
    assert report.skipped_locked == (f"snapshots/{first}",)
    assert len(repo.snapshots()) == 2
    clock.advance(days=11)
    assert repo.forget({"src": Policy(keep_last=1)}).forgotten == (first,)


def test_memory_store_enforces_retention() -> None:
    """The in-memory store refuses to delete or overwrite an object under retention."""
    clock = Clock()
    store = MemoryStore(object_lock=True, clock=clock)
    repo = new_repo(store, clock=clock, retention_days=1)
    snapshot(repo, b"x" * 5000)
    key = next(iter(_data_keys(store)))
    with pytest.raises(StoreError, match="retention"):
        store.delete(key)
    with pytest.raises(StoreError, match="retention"):
        store.put(key, io.BytesIO(b"y").read())
