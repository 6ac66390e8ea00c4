"""Where new chunks go: into packs (version 2 repositories) or loose objects (version 1).

A `ChunkSink` belongs to one run (backup, copy, prune's repack) on one repository.
`add` seals the chunk as an envelope bound to its chunk key; in a pack repository
it appends it to the open pack, and the thread whose chunk would overflow the pack
uploads the full pack itself. At most `max_uploads` full packs exist at once (a
thread that fills another waits for one to be stored), so the memory held in packs is
at most (max_uploads + 1) × pack_size, whatever the number of upload threads.
`finish` uploads the last pack and writes one index object naming every pack of the
run; a caller writes its manifest only after `finish` returns, so a committed
snapshot never references a chunk that no index (or loose object) makes findable.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from recoveryd.repo import crypto
from recoveryd.repo.chunkstore import random_index_id
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.layout import chunk_key, index_key, pack_key
from recoveryd.repo.packs import Blob, PackBuilder, encode_index

MAX_UPLOADS = 2  # full packs in memory at once (uploading, or waiting to)

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository
    from recoveryd.stores.base import Retention


class ChunkSink:
    """Stores new chunks of one run in one repository. Thread-safe."""

    def __init__(
        self, repo: Repository, retention: Retention | None, *, max_uploads: int = MAX_UPLOADS
    ) -> None:
        self.repo = repo
        self.retention = retention
        self.pack_size = repo.pack_size
        self.max_uploads = max(1, max_uploads)
        self.stored = 0  # bytes of new objects written by this run
        self.written: dict[str, list[Blob]] = {}  # pack id -> blobs, packs uploaded
        self.objects = 0
        self._open = PackBuilder()
        self._lock = threading.Condition()
        self._uploading = 0

    def add(self, chunk_id: str, *payload: bytes | memoryview) -> int:
        """Seal and store one chunk payload (given whole, or in parts that are sealed as one:
        marker and body); returns the bytes it adds to the store."""
        key = self.repo.current_key
        envelope = crypto.seal_parts(
            payload,
            key=key.enc_key,
            key_id=key.id_bytes,
            cid=self.repo.config.cipher,
            otype=ObjectType.CHUNK,
            name=chunk_key(chunk_id),
        )
        return self.add_sealed(chunk_id, envelope)

    def add_sealed(self, chunk_id: str, envelope: bytes | bytearray) -> int:
        """Store a chunk envelope already sealed under its chunk key (prune's repack)."""
        if self.pack_size is None:
            sealed = envelope if isinstance(envelope, bytes) else bytes(envelope)
            self.repo.store.put(chunk_key(chunk_id), sealed, retention=self.retention)
            with self._lock:
                self.stored += len(envelope)
                self.objects += 1
            return len(envelope)
        full = None
        with self._lock:
            # the whole pack, header included, fits `pack_size`: one PUT on S3 (whose
            # multipart threshold is the part size, by default the pack size)
            if self._open.blobs and self._open.size_with(len(envelope)) > self.pack_size:
                while self._uploading >= self.max_uploads:
                    self._lock.wait()
                full, self._open = self._open, PackBuilder()
                self._uploading += 1
            self._open.add(chunk_id, envelope)
            self.stored += len(envelope)
        if full is not None:
            self._upload(full)
        return len(envelope)

    def _upload(self, pack: PackBuilder) -> None:
        """Store a full pack; releases its upload place whatever happens."""
        try:
            blobs = pack.blobs
            blob_bytes = pack.size
            pid, data = pack.finish(self._seal_header)
            self.repo.store.put(pack_key(pid), data, retention=self.retention)
            with self._lock:
                self.written[pid] = blobs
                self.stored += len(data) - blob_bytes
                self.objects += 1
        finally:
            with self._lock:
                self._uploading -= 1
                self._lock.notify_all()

    def _seal_header(self, name: str, payload: bytes) -> bytes:
        return self.repo.seal(name, ObjectType.PACK_HEADER, payload)

    def flush(self) -> None:
        """Upload the open pack, if it holds any chunk."""
        with self._lock:
            pack, self._open = self._open, PackBuilder()
            if pack.blobs:
                while self._uploading >= self.max_uploads:
                    self._lock.wait()
                self._uploading += 1
        if pack.blobs:
            self._upload(pack)

    def finish(self) -> str | None:
        """Upload the last pack and write the index of this run's packs; its id (or None)."""
        self.flush()
        if not self.written:
            return None
        iid = random_index_id()
        size = self.repo.put_object(
            index_key(iid), ObjectType.INDEX, encode_index(self.written), retention=self.retention
        )
        with self._lock:
            self.stored += size
            self.objects += 1
        self.repo.chunks.remember(iid, self.written)
        return iid
