"""The ObjectStore contract (stores/base.py), run against every implementation.

Memory, filesystem, and the real S3 stores Ceph RGW and Swift (s3api), each over
plain HTTP and over TLS with the test CA.
"""

from __future__ import annotations

import os
import threading

import pytest

from recoveryd.errors import NotFoundError, PreconditionFailedError
from recoveryd.stores.base import Capabilities, ObjectStore

from .conftest import PART_SIZE


def _keys(store: ObjectStore, prefix: str = "") -> dict[str, int]:
    infos = list(store.list(prefix))
    keys = [i.key for i in infos]
    assert len(keys) == len(set(keys)), "list yielded a key twice"
    return {i.key: i.size for i in infos}


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    """What was stored is read back byte for byte, and stat/exists agree."""
    data = os.urandom(1000) + b"\x00\xff" * 10
    store.put("data/ab/abcdef", data)
    assert store.get("data/ab/abcdef") == data
    assert store.stat("data/ab/abcdef").size == len(data)
    assert store.stat("data/ab/abcdef").key == "data/ab/abcdef"
    assert store.exists("data/ab/abcdef")


def test_empty_object_round_trips(store: ObjectStore) -> None:
    """A zero-byte object exists and reads back empty."""
    store.put("locks/empty", b"")
    assert store.get("locks/empty") == b""
    assert store.stat("locks/empty").size == 0
    assert store.exists("locks/empty")


def test_put_overwrites_by_default(store: ObjectStore) -> None:
    """A second put of the same key replaces the object completely."""
    store.put("index/x", b"first version, longer")
    store.put("index/x", b"second")
    assert store.get("index/x") == b"second"
    assert _keys(store, "index/") == {"index/x": 6}


def test_missing_objects_raise_not_found(store: ObjectStore) -> None:
    """get, get_range and stat of an absent key raise NotFoundError; exists is False."""
    with pytest.raises(NotFoundError):
        store.get("nope/missing")
    with pytest.raises(NotFoundError):
        store.get_range("nope/missing", 0, 10)
    with pytest.raises(NotFoundError):
        store.stat("nope/missing")
    assert not store.exists("nope/missing")


def test_delete_removes_and_is_idempotent(store: ObjectStore) -> None:
    """delete removes the object; deleting a missing key is not an error."""
    store.put("snapshots/one", b"x")
    store.delete("snapshots/one")
    assert not store.exists("snapshots/one")
    assert _keys(store, "snapshots/") == {}
    store.delete("snapshots/one")
    store.delete("never/existed")


def test_get_range_reads_a_slice_and_stops_at_the_end(store: ObjectStore) -> None:
    """get_range returns exactly the slice, fewer bytes at the end, nothing past it."""
    data = bytes(range(256)) * 4
    store.put("packs/p1", data)
    assert store.get_range("packs/p1", 10, 20) == data[10:30]
    assert store.get_range("packs/p1", 0, 1) == data[:1]
    assert store.get_range("packs/p1", 1000, 100) == data[1000:]
    assert store.get_range("packs/p1", len(data), 10) == b""
    assert store.get_range("packs/p1", 5, 0) == b""


def test_list_yields_every_key_under_a_prefix_once_with_size(store: ObjectStore) -> None:
    """list(prefix) is a plain string prefix over keys (not only whole path components)."""
    objects = {
        "data/ab/ab01": b"1",
        "data/ab/ab02": b"22",
        "data/ac/ac01": b"333",
        "data/abc": b"4444",
        "snapshots/s1": b"55555",
        "top": b"666666",
    }
    for key, value in objects.items():
        store.put(key, value)
    everything = {k: len(v) for k, v in objects.items()}
    assert _keys(store) == everything
    assert _keys(store, "data/") == {k: n for k, n in everything.items() if k.startswith("data/")}
    assert _keys(store, "data/ab") == {"data/ab/ab01": 1, "data/ab/ab02": 2, "data/abc": 4}
    assert _keys(store, "data/ab/") == {"data/ab/ab01": 1, "data/ab/ab02": 2}
    assert _keys(store, "snap") == {"snapshots/s1": 5}
    assert _keys(store, "missing/") == {}


def test_list_reads_after_writes_and_deletes(store: ObjectStore) -> None:
    """A listing right after a put or delete reflects it (strong consistency)."""
    store.put("locks/a", b"a")
    assert "locks/a" in _keys(store, "locks/")
    store.delete("locks/a")
    assert "locks/a" not in _keys(store, "locks/")


def test_large_object_round_trips_through_multipart(store: ObjectStore) -> None:
    """An object larger than the part size reads back intact, also across part boundaries."""
    data = os.urandom(2 * PART_SIZE + 12345)
    store.put("packs/large", data)
    assert store.stat("packs/large").size == len(data)
    assert store.get("packs/large") == data
    boundary = PART_SIZE - 100
    assert store.get_range("packs/large", boundary, 200) == data[boundary : boundary + 200]
    assert _keys(store, "packs/") == {"packs/large": len(data)}


def test_if_absent_creates_a_new_object(store: ObjectStore) -> None:
    """A conditional put of a new key stores it, on every store."""
    store.put("locks/exclusive", b"mine", if_absent=True)
    assert store.get("locks/exclusive") == b"mine"


def test_if_absent_refuses_an_existing_object_where_supported(store: ObjectStore) -> None:
    """Where the store supports conditional writes, an existing key is not overwritten."""
    store.put("locks/exclusive", b"first")
    if not store.capabilities().conditional_put:
        pytest.skip("this store does not support conditional writes (and says so)")
    with pytest.raises(PreconditionFailedError):
        store.put("locks/exclusive", b"second", if_absent=True)
    assert store.get("locks/exclusive") == b"first"


def test_capabilities_report_what_the_store_really_does(
    store: ObjectStore, store_kind: str
) -> None:
    """Conditional writes and enforced Object Lock are reported truthfully per vendor."""
    expected = {
        "memory": Capabilities(conditional_put=True, object_lock=False),
        "filesystem": Capabilities(conditional_put=True, object_lock=False),
        "ceph": Capabilities(conditional_put=True, object_lock=False),  # bucket without lock
        "swift": Capabilities(conditional_put=False, object_lock=False),
    }[store_kind.partition("-")[0]]
    assert store.capabilities() == expected
    assert _keys(store) == {}, "capability probes must leave no objects behind"


def test_concurrent_puts_and_gets_from_many_threads(store: ObjectStore) -> None:
    """The store is safe to share between the pipeline's upload threads."""
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                key = f"data/t{n}/{i}"
                value = f"{n}-{i}".encode() * 100
                store.put(key, value)
                assert store.get(key) == value
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(_keys(store, "data/")) == 30
