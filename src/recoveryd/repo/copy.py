"""Copying a snapshot between repositories (off-site copy, leaving a vendor)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from recoveryd.flow import NO_TALLY, Tally
from recoveryd.model import SnapshotInfo
from recoveryd.repo.manifest import ChunkRef
from recoveryd.repo.packer import ChunkSink

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository


def copy_snapshot(
    src: Repository, snapshot_id: str, dest: Repository, tally: Tally = NO_TALLY
) -> SnapshotInfo:
    """Copy one snapshot into `dest`; idempotent (an existing copy is left as it is).

    Each chunk copied (or found already there) is counted in `tally` (its plaintext
    length as read, its stored size when uploaded).

    Each chunk is authenticated in `src` (loose or from its pack), renamed with
    `dest`'s keyed id, re-encrypted under `dest`'s current key and stored unless
    `dest` already has it (the retention of the object holding it is then extended
    when Object Lock is on); in a pack repository it goes into `dest`'s packs. The
    index, then the manifest, are written last, so an interrupted copy is invisible.
    """
    sid = src.resolve(snapshot_id)
    if sid in dest.snapshot_ids():
        return dest.manifest(sid).info(dest.name)
    with src.lock(operation="copy"), dest.lock(operation="copy"):
        m = src.manifest(sid)
        existing = dest.chunk_ids()
        before = frozenset(existing)
        guard = threading.Lock()
        retention = dest.retention()
        sink = ChunkSink(dest, retention)
        extended: set[str] = set()

        def one(ref: ChunkRef) -> ChunkRef:
            payload = src.chunks.read_payload(ref.id, snapshot=sid)
            data = src.check_payload(ref.id, ref.length, payload, snapshot=sid)
            new_id = dest.chunk_id(data)
            with guard:
                fresh = new_id not in existing
                existing.add(new_id)
            n = sink.add(new_id, payload) if fresh else 0
            if not fresh and retention is not None and new_id in before:
                with guard:
                    key = dest.chunks.object_of(new_id)
                    todo = key not in extended
                    extended.add(key)
                if todo:
                    dest.store.extend_retention(key, retention)
            tally.add(ref.length, stored=n, new_chunk=fresh)
            return ChunkRef(new_id, ref.length)

        window = max(1, dest.concurrency) * 2
        refs: list[ChunkRef] = []
        with ThreadPoolExecutor(max_workers=max(1, dest.concurrency)) as pool:
            for start in range(0, len(m.chunks), window):
                refs.extend(pool.map(one, m.chunks[start : start + window]))
        sink.finish()
        copied = replace(m, chunks=tuple(refs), stored_size=sink.stored)
        dest.write_manifest(copied)
        return copied.info(dest.name)
