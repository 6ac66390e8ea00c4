"""Pack repositories on real stores: the filesystem, Ceph RGW and Swift's S3 (fixtures)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recoveryd.repo import Policy, Repository, SnapshotMeta, write_snapshot
from recoveryd.stores.base import ObjectStore
from recoveryd.stores.factory import open_store
from recoveryd.stores.wrappers import innermost
from tests.unit.repo.helpers import SMALL, TINY_PACKS, BytesReader, master, text_data

from ...fixtures.objectstores import TargetSpec

pytestmark = pytest.mark.integration


def _store(spec: TargetSpec, name: str = "t") -> ObjectStore:
    return open_store(name, spec.target, base_dir=spec.base_dir, resolve_secret=lambda s: s)


def _snap(repo: Repository, data: bytes) -> str:
    return write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="s"))[0].id


def _keys(store: ObjectStore, prefix: str) -> list[str]:
    return [o.key for o in store.list(prefix)]


class _Reads:
    """Counts whole-object and ranged reads of packs on the real store underneath (a
    recording shim; every call goes to the real store)."""

    def __init__(self, store: ObjectStore) -> None:
        self.whole = 0
        self.ranged = 0
        inner = innermost(store)
        get, get_range = inner.get, inner.get_range

        def whole(key: str) -> bytes:
            self.whole += key.startswith("packs/")
            return get(key)

        def ranged(key: str, offset: int, length: int) -> bytes:
            self.ranged += key.startswith("packs/")
            return get_range(key, offset, length)

        inner.get = whole  # type: ignore[method-assign]
        inner.get_range = ranged  # type: ignore[method-assign]


@pytest.fixture(params=["filesystem", "ceph", "swift"])
def spec(request: pytest.FixtureRequest, target_factory: Callable[..., TargetSpec]) -> TargetSpec:
    return target_factory(str(request.param))


def test_packs_round_trip_dedup_and_ranged_restore(spec: TargetSpec) -> None:
    """Chunks land in few pack objects with one index per backup; a second snapshot of
    nearly the same data stores little and reuses chunks of the first run's packs; both
    restore byte for byte through ranged reads only; verify --read-data passes."""
    store = _store(spec)
    repo = Repository.init(store, master(), name="t", chunker_params=SMALL, pack_size=TINY_PACKS)
    data = text_data(30000)
    first = _snap(repo, data)
    chunks = len(repo.manifest(first).chunks)
    packs = _keys(store, "packs/")
    assert not _keys(store, "data/")
    assert len(_keys(store, "index/")) == 1
    assert 1 < len(packs) < chunks / 3
    data2 = data[:100_000] + b"one changed row\n" + data[100_000:]
    second = _snap(repo, data2)
    assert repo.manifest(second).stored_size < repo.manifest(first).stored_size / 5
    assert len(_keys(store, "index/")) == 2
    reads = _Reads(store)
    fresh = Repository.open(store, master(), name="t")
    assert fresh.restore_stream(first).read() == data
    assert fresh.restore_stream(second).read() == data2
    assert reads.whole == 0 and reads.ranged > 0  # neighbours share a read: repo/ranges.py
    assert fresh.verify(read_data=True).ok


def test_verify_names_a_damaged_pack_and_a_damaged_index(spec: TargetSpec) -> None:
    """A changed byte inside a pack, or an index object replaced by garbage, is reported by
    verify --read-data naming that object."""
    store = _store(spec)
    repo = Repository.init(store, master(), name="t", chunker_params=SMALL, pack_size=TINY_PACKS)
    sid = _snap(repo, text_data(8000))
    pack = sorted(_keys(store, "packs/"))[0]
    blob = store.get(pack)
    store.put(pack, blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    report = Repository.open(store, master(), name="t").verify(read_data=True)
    assert {p.obj for p in report.problems} == {pack}
    assert all(p.snapshot in (sid, None) for p in report.problems)
    store.put(pack, blob)
    (index,) = _keys(store, "index/")
    store.put(index, b"RCVD" + bytes(60))
    report = Repository.open(store, master(), name="t").verify()
    assert index in {p.obj for p in report.problems}


def test_copy_between_targets_and_from_a_loose_repository(
    target_factory: Callable[..., TargetSpec],
) -> None:
    """A snapshot of a version 1 (loose) filesystem repository copies into a pack
    repository on Ceph, and from there into one on Swift; each copy restores identically
    and a second copy of a similar snapshot stores only what is new."""
    loose = Repository.init(
        _store(target_factory("filesystem")), master(), name="a", chunker_params=SMALL,
        pack_size=None,
    )  # fmt: skip
    ceph_store = _store(target_factory("ceph"))
    ceph = Repository.init(
        ceph_store, master(2), name="b", chunker_params=SMALL, pack_size=TINY_PACKS
    )
    swift = Repository.init(
        _store(target_factory("swift")), master(3), name="c", chunker_params=SMALL,
        pack_size=TINY_PACKS,
    )  # fmt: skip
    data = text_data(20000)
    sid = _snap(loose, data)
    loose.copy_snapshot(sid, ceph)
    assert _keys(ceph_store, "packs/") and not _keys(ceph_store, "data/")
    ceph.copy_snapshot(sid, swift)
    for repo in (ceph, swift):
        assert repo.restore_stream(sid).read() == data
    data2 = data + text_data(200, seed=9)
    sid2 = _snap(loose, data2)
    info = loose.copy_snapshot(sid2, ceph)
    assert info.stored_size < ceph.manifest(sid).stored_size / 5
    assert ceph.restore_stream(sid2).read() == data2


def test_object_lock_keeps_locked_packs_and_prune_does_not_rewrite(
    target_factory: Callable[..., TargetSpec],
) -> None:
    """On Ceph with Object Lock enforced, packs and indexes carry retention; after forgetting
    a snapshot, prune rewrites no pack and deletes none still under retention (they are
    reported), and every kept snapshot still verifies."""
    spec = target_factory("ceph", object_lock={"mode": "governance", "days": 1})
    store = _store(spec)
    repo = Repository.init(
        store, master(), name="t", chunker_params=SMALL, pack_size=TINY_PACKS,
        retention_days=1, lock_mode="governance",
    )  # fmt: skip
    assert repo.capabilities().object_lock
    old = _snap(repo, text_data(6000, seed=1))
    new = _snap(repo, text_data(6000, seed=2))
    before = set(_keys(store, "packs/"))
    report = repo.forget({"s": Policy(keep_last=1)})
    assert old in report.forgotten or f"snapshots/{old}" in report.skipped_locked
    assert report.repacked == 0
    assert set(_keys(store, "packs/")) == before
    assert repo.verify([new], read_data=True).ok


def test_prune_rewrites_partly_used_packs_and_keeps_every_snapshot(spec: TargetSpec) -> None:
    """After the snapshot that alone used half of some packs is forgotten, prune rewrites
    those packs (their live chunks move, still sealed, into new packs), deletes the old
    ones and consolidates the index into one object; the kept snapshots verify and
    restore byte for byte, and a later backup still deduplicates against the new packs."""
    store = _store(spec)
    repo = Repository.init(
        store, master(), name="t", chunker_params=SMALL, pack_size=TINY_PACKS, concurrency=1
    )
    keep = [text_data(800, seed=10 + i) for i in range(5)]
    drop = [text_data(800, seed=50 + i) for i in range(5)]
    big = _snap(repo, b"".join(a + b for a, b in zip(keep, drop, strict=True)))
    kept = {_snap(repo, data): data for data in keep}
    repo.forget_manifest(big)
    before = set(_keys(store, "packs/"))
    report = repo.prune()
    after = set(_keys(store, "packs/"))
    assert report.repacked > 0 and after - before and before - after
    assert len(_keys(store, "index/")) == 1
    fresh = Repository.open(store, master(), name="t")
    assert fresh.verify(read_data=True).ok
    for sid, data in kept.items():
        assert fresh.restore_stream(sid).read() == data
    again = _snap(fresh, keep[0])
    assert fresh.manifest(again).stored_size < len(keep[0]) / 10
