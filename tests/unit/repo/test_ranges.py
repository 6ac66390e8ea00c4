"""Restore reads chunks that lie next to each other in a pack with one ranged request:
fewer requests, the same bytes in the same order, every chunk still authenticated."""

from __future__ import annotations

import re

import pytest

from recoveryd.errors import IntegrityError
from recoveryd.repo import ChunkerParams, Repository
from recoveryd.repo.manifest import ChunkRef
from recoveryd.repo.packs import Location
from recoveryd.repo.ranges import NO_MERGE, Merge, Run, plan
from recoveryd.repo.restore import RestoreReader
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import master, new_repo, snapshot, text_data

PARAMS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
PACKS = 256 * 1024
MERGE = Merge(max_gap=100, max_request=1000, max_plain=10_000)


def _ref(n: int, length: int = 100) -> ChunkRef:
    return ChunkRef(f"{n:064x}", length)


Place = tuple[str, int, int] | None


def _plan(places: list[Place], merge: Merge = MERGE) -> list[Run]:
    refs = [_ref(i) for i in range(len(places))]
    where = {r.id: Location(*p) if p else None for r, p in zip(refs, places, strict=True)}
    return list(plan(refs, where.get, merge))


def _requests(places: list[Place], merge: Merge = MERGE) -> list[list[tuple[str, int, int]]]:
    """The requests (pack, start, end) of each run for chunks 0.. at `places`."""
    return [[(q.pack, q.start, q.end) for q in run.requests] for run in _plan(places, merge)]


def test_adjacent_chunks_of_one_pack_are_one_request() -> None:
    """Chunks one after the other in a pack, as a backup writes them, are one request."""
    assert _requests([("p", 0, 100), ("p", 100, 100), ("p", 200, 50)]) == [[("p", 0, 250)]]


def test_small_gaps_join_and_large_gaps_split() -> None:
    """A gap up to `max_gap` (another stream's chunk) is read and dropped; a larger one
    starts a new request."""
    assert _requests([("p", 0, 100), ("p", 200, 100), ("p", 401, 100)]) == [
        [("p", 0, 300), ("p", 401, 501)]
    ]


def test_neighbours_out_of_order_and_two_packs_interleaved() -> None:
    """Chunks a backup's threads appended out of order, and a stream that continues in the
    next pack while the last chunks of the previous one come, are one request per pack;
    the chunks keep the stream's order and each knows its request."""
    places: list[Place] = [
        ("p", 200, 100),
        ("p", 0, 100),
        ("q", 0, 100),
        ("p", 100, 100),
        ("q", 100, 100),
        ("p", 300, 100),
    ]
    (run,) = _plan(places)
    assert [(q.pack, q.start, q.end) for q in run.requests] == [("p", 0, 400), ("q", 0, 200)]
    assert [int(r.id, 16) for r in run.refs] == list(range(6))
    assert run.within == (0, 0, 1, 0, 1, 0)


def test_an_unindexed_chunk_is_read_on_its_own() -> None:
    """A chunk the index does not name (a loose one) has no request: it is read alone."""
    (run,) = _plan([("p", 0, 100), None, ("p", 100, 100)])
    assert run.within == (0, None, 0) and len(run.requests) == 1


def test_a_chunk_repeated_is_read_once() -> None:
    """The same chunk twice in a run (a repeated block of the dump) is in one request."""
    assert _requests([("p", 0, 100), ("p", 100, 100), ("p", 100, 100)]) == [[("p", 0, 200)]]


def test_requests_and_plaintext_are_bounded() -> None:
    """A request spans at most `max_request` bytes of the pack, a run at most `max_plain`
    of plaintext (at least one chunk); NO_MERGE reads one chunk per request."""
    ten: list[Place] = [("p", i * 100, 100) for i in range(10)]
    assert _requests(ten) == [[("p", 0, 1000)]]
    assert _requests(ten, Merge(max_gap=0, max_request=450, max_plain=10_000)) == [
        [("p", 0, 400), ("p", 400, 800), ("p", 800, 1000)]
    ]
    runs = _plan(ten, Merge(max_gap=0, max_request=1000, max_plain=300))
    assert [len(r.refs) for r in runs] == [3, 3, 3, 1]
    assert [len(r.requests) for r in runs] == [1, 1, 1, 1]
    assert _requests(ten, NO_MERGE) == [[("p", i * 100, i * 100 + 100)] for i in range(10)]


class CountingStore(MemoryStore):
    """A MemoryStore that records every ranged read of a pack (key, offset, length)."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[str, int, int]] = []

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if key.startswith("packs/"):
            self.ranges.append((key, offset, length))
        return super().get_range(key, offset, length)


def _restore(repo: Repository, sid: str, merge: Merge | None) -> tuple[bytes, int]:
    store = repo.store
    assert isinstance(store, CountingStore)
    store.ranges.clear()
    with RestoreReader(repo, repo.manifest(sid), merge=merge) as reader:
        data = b"".join(iter(lambda: reader.read(10_000), b""))
    return data, len(store.ranges)


def test_restore_reads_fewer_ranges_and_the_same_bytes() -> None:
    """A restore with merged ranges returns the same bytes as one chunk per request with a
    fraction of the requests; no request exceeds the bound."""
    store = CountingStore()
    repo = new_repo(store, params=PARAMS, pack_size=PACKS)
    data = text_data(20_000)
    sid = snapshot(repo, data)
    chunks = len(repo.manifest(sid).chunks)
    one_by_one, singles = _restore(repo, sid, NO_MERGE)
    merged, requests = _restore(repo, sid, None)
    assert one_by_one == merged == data
    assert singles == chunks
    assert requests * 4 <= chunks
    budget = 8 * PARAMS.max_size
    assert all(length <= budget for _, _, length in store.ranges)


def test_a_changed_byte_inside_a_merged_run_names_its_chunk() -> None:
    """Each chunk of a run is authenticated on its own: a flipped byte in the second chunk
    of a request fails the restore naming the pack and that chunk."""
    store = CountingStore()
    repo = new_repo(store, params=PARAMS, pack_size=PACKS)
    data = text_data(3000)
    sid = snapshot(repo, data)
    refs = repo.manifest(sid).chunks
    first = repo.chunks.index().get(refs[0].id)
    second = repo.chunks.index().get(refs[1].id)
    assert first is not None and second is not None and first.pack == second.pack
    blob = store.objects[second.key]
    pos = second.offset + second.length // 2
    store.objects[second.key] = blob[:pos] + bytes([blob[pos] ^ 1]) + blob[pos + 1 :]
    fresh = Repository.open(store, master())
    store.ranges.clear()
    with pytest.raises(IntegrityError, match=f"chunk {refs[1].id} at offset {second.offset}"):
        fresh.restore_stream(sid).read()
    end = second.offset + second.length
    assert any(k == second.key and o <= first.offset and o + n >= end for k, o, n in store.ranges)


def test_a_truncated_pack_names_a_chunk_cut() -> None:
    """A pack shorter than its index says fails the restore as truncated, naming the pack
    and a chunk whose bytes are missing."""
    store = CountingStore()
    repo = new_repo(store, params=PARAMS, pack_size=PACKS)
    sid = snapshot(repo, text_data(3000))
    index = repo.chunks.index()
    third = index.get(repo.manifest(sid).chunks[2].id)
    assert third is not None
    cut = third.offset + 10
    store.objects[third.key] = store.objects[third.key][:cut]
    with pytest.raises(IntegrityError, match="is truncated") as err:
        Repository.open(store, master()).restore_stream(sid).read()
    assert err.value.obj == third.key and err.value.snapshot == sid
    named = re.search(r"chunk ([0-9a-f]{64}) at offset (\d+)", str(err.value))
    assert named is not None
    loc = index.get(named.group(1))
    assert loc is not None and loc.key == third.key and loc.offset + loc.length > cut


def test_run_plaintext_is_its_chunks() -> None:
    """A run's plaintext size is the sum of its chunks' lengths."""
    (run,) = _plan([("p", 10, 100), ("p", 150, 100)])
    assert run.plain == 200
