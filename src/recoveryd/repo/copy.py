"""Copying a snapshot between repositories (off-site copy, leaving a vendor)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from recoveryd.flow import NO_TALLY, Tally
from recoveryd.model import SnapshotInfo
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.layout import chunk_key
from recoveryd.repo.manifest import ChunkRef

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository


def copy_snapshot(
    src: Repository, snapshot_id: str, dest: Repository, tally: Tally = NO_TALLY
) -> SnapshotInfo:
    """Copy one snapshot into `dest`; idempotent (an existing copy is left as it is).

    Each chunk copied (or found already there) is counted in `tally` (its plaintext
    length as read, its stored size when uploaded).

    Each chunk is authenticated in `src`, renamed with `dest`'s keyed id,
    re-encrypted under `dest`'s current key and uploaded unless `dest` already
    has it (its retention is then extended when Object Lock is on). The
    manifest is written last, so an interrupted copy is invisible.
    """
    sid = src.resolve(snapshot_id)
    if sid in dest.snapshot_ids():
        return dest.manifest(sid).info(dest.name)
    with src.lock(operation="copy"), dest.lock(operation="copy"):
        m = src.manifest(sid)
        existing = dest.chunk_ids()
        guard = threading.Lock()
        stored = 0
        retention = dest.retention()

        def one(ref: ChunkRef) -> ChunkRef:
            nonlocal stored
            payload = src.get_object(chunk_key(ref.id), ObjectType.CHUNK, snapshot=sid)
            data = src.check_payload(ref.id, ref.length, payload, snapshot=sid)
            new_id = dest.chunk_id(data)
            with guard:
                fresh = new_id not in existing
                existing.add(new_id)
            n = 0
            if fresh:
                n = dest.put_object(
                    chunk_key(new_id), ObjectType.CHUNK, payload, retention=retention
                )
                with guard:
                    stored += n
            elif retention is not None:
                dest.store.extend_retention(chunk_key(new_id), retention)
            tally.add(ref.length, stored=n, new_chunk=fresh)
            return ChunkRef(new_id, ref.length)

        window = max(1, dest.concurrency) * 2
        refs: list[ChunkRef] = []
        with ThreadPoolExecutor(max_workers=max(1, dest.concurrency)) as pool:
            for start in range(0, len(m.chunks), window):
                refs.extend(pool.map(one, m.chunks[start : start + window]))
        copied = replace(m, chunks=tuple(refs), stored_size=stored)
        dest.write_manifest(copied)
        return copied.info(dest.name)
