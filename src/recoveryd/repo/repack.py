"""Garbage collection of packs (prune's second half, docs/FORMAT.md §4a).

`plan` decides, from the live chunk ids and a freshly read index, which packs stay as
they are, which are rewritten (their live bytes are below `REPACK_BELOW` of their
blob bytes) and which go (no live chunk, or a leftover no index names). `execute`
then works in an order where a kill at any point leaves every committed snapshot
readable:

1. the live blobs of the packs to rewrite are copied, still sealed, into new packs;
2. one index naming every kept and new pack is written (old and new indexes now both
   point at existing packs; a chunk found twice is valid in either place);
3. the old index objects are deleted;
4. only then the packs no remaining index names are deleted.

Under Object Lock enforcement nothing is rewritten (a rewritten pack could not be
deleted before its retention ends, so it would only add bytes); packs without a live
chunk are deleted once the store allows it, and a refused delete is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recoveryd.errors import IntegrityError
from recoveryd.repo.chunkstore import random_index_id
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.layout import PACKS_PREFIX, chunk_key, index_key, pack_key
from recoveryd.repo.packer import ChunkSink
from recoveryd.repo.packs import Blob, PackIndex, encode_index

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository

REPACK_BELOW = 0.8  # rewrite a pack when less than this fraction of its blob bytes is live
PACKS_PER_INDEX = 2000  # packs named by one index object written by prune


@dataclass
class PackPlan:
    """What prune does with the packs of a repository."""

    index: PackIndex
    sizes: dict[str, int]  # pack id -> stored size, every pack listed
    keep: dict[str, list[Blob]] = field(default_factory=dict)
    repack: dict[str, list[Blob]] = field(default_factory=dict)  # live blobs to move
    drop: list[str] = field(default_factory=list)  # no live chunk, or not indexed

    @property
    def changes(self) -> bool:
        return bool(self.repack or self.drop)

    @property
    def index_changes(self) -> bool:
        """Whether an indexed pack goes (leftovers no index names go without a new index)."""
        return bool(self.repack) or any(pid in self.index.packs for pid in self.drop)


def plan(repo: Repository, referenced: set[str], *, may_repack: bool) -> PackPlan:
    """Classify every pack in the store (see module docstring)."""
    index = repo.chunks.load_index()
    sizes = {o.key.rsplit("/", 1)[-1]: o.size for o in repo.store.list(PACKS_PREFIX)}
    owner: dict[str, str] = {}
    for pid, blobs in index.packs.items():
        if pid in sizes:
            for b in blobs:
                if b.id in referenced:
                    owner.setdefault(b.id, pid)
    out = PackPlan(index, sizes)
    for pid in sorted(sizes):
        all_blobs = index.packs.get(pid, [])
        live = [b for b in all_blobs if owner.get(b.id) == pid]
        if not live:
            out.drop.append(pid)
        elif may_repack and _bytes(live) < REPACK_BELOW * _bytes(all_blobs):
            out.repack[pid] = live
        else:
            out.keep[pid] = list(all_blobs)
    return out


def _bytes(blobs: Iterable[Blob]) -> int:
    return sum(b.length for b in blobs)


@dataclass
class RepackResult:
    written: int = 0  # new packs
    deleted: list[str] = field(default_factory=list)  # keys of packs and indexes removed
    deleted_bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # keys Object Lock kept


def execute(
    repo: Repository, p: PackPlan, delete: Callable[[str], bool], *, rewrite_index: bool
) -> RepackResult:
    """Carry out `p` in the crash-safe order of the module docstring.

    `delete(key)` removes one object and says whether it is gone (False: retained)."""
    result = RepackResult()
    if not (p.changes or rewrite_index):
        return result
    sink = ChunkSink(repo, repo.retention())
    for pid, live in p.repack.items():
        _move(repo, pid, live, sink)
    sink.flush()
    result.written = len(sink.written)
    old: list[str] = []
    if p.index_changes or rewrite_index:
        _write_index(repo, {**p.keep, **sink.written}, sink)
        old = sorted(p.index.index_ids)
    kept_indexes = _delete_all(repo, [index_key(i) for i in old], delete)
    protected = {pid for iid in old if index_key(iid) in kept_indexes for pid in p.index.named[iid]}
    gone = [pid for pid in [*p.drop, *p.repack] if pid not in protected]
    kept_packs = _delete_all(repo, [pack_key(pid) for pid in gone], delete)
    for key in [*(index_key(i) for i in old), *map(pack_key, gone)]:
        if key in kept_indexes or key in kept_packs:
            result.skipped.append(key)
        else:
            result.deleted.append(key)
    result.deleted_bytes = sum(p.sizes[pid] for pid in gone if pack_key(pid) not in kept_packs)
    repo.chunks.forget_cache()
    return result


def _move(repo: Repository, pid: str, live: Sequence[Blob], sink: ChunkSink) -> None:
    """Copy the live blobs of pack `pid` into `sink`, each authenticated first."""
    data = repo.store.get(pack_key(pid))
    for b in live:
        envelope = data[b.offset : b.offset + b.length]
        try:
            repo.open_blob(chunk_key(b.id), envelope, ObjectType.CHUNK)
        except IntegrityError:
            raise IntegrityError(
                f"object {pack_key(pid)}: chunk {b.id} at {b.offset} failed authentication; "
                "prune refuses to rewrite a damaged pack (run `recoveryd verify --read-data`)",
                obj=pack_key(pid),
            ) from None
        sink.add_sealed(b.id, envelope)


def _write_index(repo: Repository, packs: Mapping[str, Sequence[Blob]], sink: ChunkSink) -> None:
    items = [(pid, blobs) for pid, blobs in packs.items() if blobs]
    for start in range(0, len(items), PACKS_PER_INDEX):
        part = dict(items[start : start + PACKS_PER_INDEX])
        iid = random_index_id()
        repo.put_object(
            index_key(iid), ObjectType.INDEX, encode_index(part), retention=sink.retention
        )


def _delete_all(repo: Repository, keys: Sequence[str], delete: Callable[[str], bool]) -> set[str]:
    """Delete `keys` in parallel; the set of those the store kept (retention)."""
    with ThreadPoolExecutor(max_workers=max(1, repo.concurrency)) as pool:
        outcomes = list(pool.map(delete, keys))
    return {k for k, ok in zip(keys, outcomes, strict=True) if not ok}
