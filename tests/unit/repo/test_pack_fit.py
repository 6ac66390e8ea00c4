"""A pack object, its header and trailer included, is at most `pack_size` bytes."""

from __future__ import annotations

from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import TINY_PACKS, new_repo, snapshot, text_data


def test_every_pack_of_several_chunks_fits_its_size_whole() -> None:
    """Packs of more than one chunk are closed before their header would take them past
    `pack_size` (docs/FORMAT.md: packs of up to `pack_size` bytes), so an S3 store whose
    part size is the pack size stores each with one PUT; they still restore."""
    store = MemoryStore()
    repo = new_repo(store, pack_size=TINY_PACKS)
    data = text_data(20000)
    sid = snapshot(repo, data)
    index = repo.chunks.load_index()
    sizes = {pid: len(store.get(f"packs/{pid[:2]}/{pid}")) for pid in index.packs}
    several = [pid for pid, blobs in index.packs.items() if len(blobs) > 1]
    assert len(several) > 5
    assert all(sizes[pid] <= TINY_PACKS for pid in several)
    assert max(sizes[pid] for pid in several) > TINY_PACKS * 3 // 4  # still well filled
    assert repo.restore_stream(sid).read() == data
