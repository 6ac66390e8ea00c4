"""Restore reads chunks that lie next to each other in a pack with one ranged request:
fewer requests, the same bytes in the same order, every chunk still authenticated."""

from __future__ import annotations

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


def _runs(places: list[tuple[str, int, int] | None], merge: Merge = MERGE) -> list[list[int]]:
    """The chunk numbers of each run for chunks 0.. at `places` (pack, offset, length)."""
    refs = [_ref(i) for i in range(len(places))]
    where = {r.id: Location(*p) if p else None for r, p in zip(refs, places, strict=True)}
    return [[int(r.id, 16) for r in run.refs] for run in plan(refs, where.get, merge)]


def test_adjacent_chunks_of_one_pack_are_one_run() -> None:
    """Chunks one after the other in a pack, as a backup writes them, are one run."""
    assert _runs([("p", 0, 100), ("p", 100, 100), ("p", 200, 50)]) == [[0, 1, 2]]


def test_small_gaps_join_and_large_gaps_split() -> None:
    """A gap up to `max_gap` (another stream's chunk) is read and dropped; a larger one
    starts a new request."""
    assert _runs([("p", 0, 100), ("p", 200, 100), ("p", 401, 100)]) == [[0, 1], [2]]


def test_another_pack_a_chunk_behind_or_an_unindexed_chunk_splits() -> None:
    """A run never spans two packs, never reaches back before its first byte, and a chunk
    the index does not name (a loose one) is read on its own; the order is the stream's."""
    places: list[tuple[str, int, int] | None] = [
        ("p", 100, 100),
        ("q", 100, 100),
        ("q", 200, 100),
        ("q", 0, 100),  # before the run's first byte (a chunk stored earlier)
        None,
        ("q", 100, 100),
    ]
    assert _runs(places) == [[0], [1, 2], [3], [4], [5]]


def test_a_chunk_repeated_inside_the_run_joins_it() -> None:
    """The same chunk twice in a row (a repeated block of the dump) is read once."""
    assert _runs([("p", 0, 100), ("p", 100, 100), ("p", 100, 100)]) == [[0, 1, 2]]


def test_requests_and_plaintext_are_bounded() -> None:
    """A run spans at most `max_request` bytes of the pack and `max_plain` of plaintext;
    NO_MERGE reads one chunk per request."""
    ten = [("p", i * 100, 100) for i in range(10)]
    assert _runs(ten) == [list(range(10))]
    assert _runs(ten, Merge(max_gap=0, max_request=450, max_plain=10_000)) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]
    assert _runs(ten, Merge(max_gap=0, max_request=1000, max_plain=300)) == [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7, 8],
        [9],
    ]
    assert _runs(ten, NO_MERGE) == [[i] for i in range(10)]


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


def test_a_truncated_pack_names_the_first_chunk_cut() -> None:
    """A pack shorter than its index says fails the restore as truncated, naming the
    first chunk whose bytes are missing."""
    store = CountingStore()
    repo = new_repo(store, params=PARAMS, pack_size=PACKS)
    sid = snapshot(repo, text_data(3000))
    refs = repo.manifest(sid).chunks
    third = repo.chunks.index().get(refs[2].id)
    assert third is not None
    store.objects[third.key] = store.objects[third.key][: third.offset + 10]
    with pytest.raises(IntegrityError, match=f"truncated \\(chunk {refs[2].id}") as err:
        Repository.open(store, master()).restore_stream(sid).read()
    assert err.value.obj == third.key and err.value.snapshot == sid


def test_run_bounds_cover_its_chunks() -> None:
    """A run's byte range starts at its first chunk and ends after its last."""
    run = Run((_ref(0), _ref(1)), (Location("p", 10, 100), Location("p", 150, 100)))
    assert (run.start, run.end, run.plain) == (10, 250, 200)
