"""Finding and reading chunks, loose (`data/…`, version 1) or in packs (version 2).

The index is every `index/*` object, read (in parallel) the first time a chunk is looked
up and cached for the repository object's lifetime. `ids()` — called at the start of
every backup, copy, verify and prune, under the repository lock — reloads it, so that
deduplication never trusts a pack another process has since removed. A chunk not found
in the cached index triggers one reload (another process may have indexed it since).
Loose chunks are found by listing `data/`; a repository may hold both.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from recoveryd.errors import IntegrityError, NotFoundError
from recoveryd.repo import chunker
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.damage import unreadable_error
from recoveryd.repo.layout import DATA_PREFIX, INDEX_PREFIX, chunk_key, index_key, pack_key
from recoveryd.repo.packs import (
    Blob,
    Location,
    PackFormatError,
    PackIndex,
    decode_header,
    decode_index,
    split_trailer,
)
from recoveryd.repo.ranges import Run

HEADER_READ = 64 * 1024  # bytes read from a pack's end to find its header in one request

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from recoveryd.repo.repository import Repository


class Chunks:
    """The chunk side of one repository. Thread-safe."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._index: PackIndex | None = None
        self._reloaded_on_miss = False
        self._reload = threading.Lock()  # one reload on a miss; the others wait for it
        self._reload_error: IntegrityError | None = None

    # -- the index -------------------------------------------------------------------

    def load_index(self, on_damaged: Callable[[IntegrityError], None] | None = None) -> PackIndex:
        """Read every index object now; IntegrityError naming the first that fails (with
        `on_damaged`, it is reported there and the others are still read)."""
        store = self.repo.store
        ids = [obj.key[len(INDEX_PREFIX) :] for obj in store.list(INDEX_PREFIX)]

        def read(iid: str) -> dict[str, list[Blob]] | IntegrityError:
            try:
                return self._read_index(iid)
            except IntegrityError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, self.repo.concurrency)) as pool:
            parts = list(pool.map(read, ids))
        index = PackIndex()
        for iid, packs in zip(ids, parts, strict=True):
            if isinstance(packs, IntegrityError):
                if on_damaged is None:
                    raise packs
                on_damaged(packs)
                continue
            index.add(iid, packs)
        with self._lock:
            self._index = index
            self._reloaded_on_miss = False
        return index

    def _read_index(self, index_id: str) -> dict[str, list[Blob]]:
        name = index_key(index_id)
        try:
            payload = self.repo.get_object(name, ObjectType.INDEX)
            return decode_index(payload)
        except NotFoundError:
            return {}  # removed by a prune since the listing: its packs are indexed elsewhere
        except PackFormatError as exc:
            raise IntegrityError(
                f"object {name} is malformed ({exc}); the stored data was changed or damaged",
                obj=name,
            ) from None

    def index(self) -> PackIndex:
        """The cached index (loaded on first use)."""
        with self._lock:
            cached = self._index
        return cached if cached is not None else self.load_index()

    def remember(self, index_id: str, packs: Mapping[str, Sequence[Blob]]) -> None:
        """Add an index object this process just wrote to the cached index."""
        with self._lock:
            if self._index is not None:
                self._index.add(index_id, packs)

    def forget_cache(self) -> None:
        with self._lock:
            self._index = None

    def ids(self) -> set[str]:
        """Every chunk id in the store: loose ones (one listing) and indexed ones (reloaded)."""
        loose = {obj.key.rsplit("/", 1)[-1] for obj in self.repo.store.list(DATA_PREFIX)}
        return loose | set(self.load_index().locations)

    def locate(self, chunk_id: str) -> Location | None:
        """The chunk's pack location; None when it is not indexed (loose or absent)."""
        loc = self.index().get(chunk_id)
        if loc is None and self.repo.config.pack_size is not None:
            with self._reload:  # readers in parallel: each sees the one reload's outcome
                if not self._reloaded_on_miss:
                    try:
                        self.load_index()
                        self._reload_error = None
                    except IntegrityError as exc:  # a damaged index object: name it to all
                        self._reload_error = exc
                    with self._lock:
                        self._reloaded_on_miss = True
                if self._reload_error is not None:
                    raise self._reload_error
            loc = self.index().get(chunk_id)
        return loc

    def object_of(self, chunk_id: str) -> str:
        """The key of the object holding the chunk (its pack, or its loose object)."""
        loc = self.index().get(chunk_id)
        return loc.key if loc is not None else chunk_key(chunk_id)

    # -- reading ---------------------------------------------------------------------

    def read_payload(self, chunk_id: str, *, snapshot: str | None = None) -> bytes:
        """The chunk's authenticated payload (compression marker + body).

        From its pack with one ranged read, else from its loose object; IntegrityError
        naming the object when it is missing, truncated or fails authentication."""
        try:
            loc = self.index().get(chunk_id)
            if loc is None:
                return self._read_loose(chunk_id, snapshot)
        except IntegrityError as exc:
            if exc.snapshot is not None or snapshot is None:
                raise
            # a damaged index object: name the snapshot that needed it
            msg = f"snapshot {snapshot}: {exc.message}"
            raise IntegrityError(msg, snapshot=snapshot, obj=exc.obj) from None
        return self.read_blob(chunk_id, loc, snapshot=snapshot)

    def _read_loose(self, chunk_id: str, snapshot: str | None) -> bytes:
        name = chunk_key(chunk_id)
        try:
            return self.repo.get_object(name, ObjectType.CHUNK, snapshot=snapshot)
        except NotFoundError:
            loc = self.locate(chunk_id)
            if loc is None:
                raise self.repo.integrity(name, snapshot, "is missing") from None
        return self.read_blob(chunk_id, loc, snapshot=snapshot)

    def read_blob(self, chunk_id: str, loc: Location, *, snapshot: str | None = None) -> bytes:
        """The payload of the blob at `loc` (authenticated as chunk `chunk_id`)."""
        envelope = self._fetch(loc.key, loc.offset, loc.length, snapshot, chunk_id)
        return self._open(chunk_id, loc, envelope, snapshot)

    def read_run(self, run: Run, *, snapshot: str | None = None) -> list[bytes]:
        """The plaintexts of the run's chunks, in stream order, each authenticated and
        checked as `Repository.read_chunk` does: the packed ones cut from the run's ranged
        requests (the bytes between them dropped), the others read on their own."""
        data = [self._fetch_request(run, n, snapshot) for n in range(len(run.requests))]
        out = []
        for ref, loc, n in zip(run.refs, run.locs, run.within, strict=True):
            if loc is None or n is None:
                out.append(self.repo.read_chunk(ref.id, ref.length, snapshot=snapshot))
                continue
            at = loc.offset - run.requests[n].start
            payload = self._open(ref.id, loc, data[n][at : at + loc.length], snapshot)
            out.append(self.check(ref.id, ref.length, payload, snapshot=snapshot))
        return out

    def _fetch_request(self, run: Run, n: int, snapshot: str | None) -> bytes:
        q = run.requests[n]
        first = next(
            ref.id
            for ref, loc, w in zip(run.refs, run.locs, run.within, strict=True)
            if w == n and loc is not None and loc.offset == q.start
        )
        return self._fetch(pack_key(q.pack), q.start, q.end - q.start, snapshot, first)

    def _fetch(self, key: str, offset: int, length: int, snapshot: str | None, first: str) -> bytes:
        """`length` bytes of pack `key` from `offset` (chunk `first` is the first there);
        fewer when the pack is shorter. IntegrityError naming the pack when it is missing."""
        try:
            return self.repo.store.get_range(key, offset, length)
        except NotFoundError:
            at = f"(chunk {first} at offset {offset})"
            raise self.repo.integrity(key, snapshot, f"is missing {at}") from None

    def _open(self, chunk_id: str, loc: Location, envelope: bytes, snapshot: str | None) -> bytes:
        """Authenticate the envelope read for chunk `chunk_id` at `loc`."""
        at = f"(chunk {chunk_id} at offset {loc.offset})"
        if len(envelope) != loc.length:
            raise self.repo.integrity(loc.key, snapshot, f"is truncated {at}")
        try:
            return self.repo.open_blob(chunk_key(chunk_id), envelope, ObjectType.CHUNK)
        except IntegrityError:
            raise self.repo.integrity(loc.key, snapshot, f"failed authentication {at}") from None

    def check(self, chunk_id: str, length: int, payload: bytes, *, snapshot: str | None) -> bytes:
        """Decompress a chunk payload and check its id and length."""
        name = self.object_of(chunk_id)
        try:
            data = chunker.decompress(payload, max_size=max(length, 1))
        except chunker.UnknownCompressionError as exc:
            raise unreadable_error(name, snapshot, str(exc)) from None
        except chunker.PayloadError as exc:
            raise self.repo.integrity(name, snapshot, f"does not decompress ({exc})") from None
        if len(data) != length or self.repo.chunk_id(data) != chunk_id:
            raise self.repo.integrity(name, snapshot, "does not match its id")
        return data

    def read_header(self, pack_id: str, size: int) -> list[Blob]:
        """The blobs a pack's own header lists (two ranged reads at most); IntegrityError
        when the trailer or header is damaged."""
        key = pack_key(pack_id)
        tail_len = min(size, HEADER_READ)
        tail = self.repo.store.get_range(key, size - tail_len, tail_len)
        try:
            offset, length = split_trailer(tail, size)
            start = offset - (size - tail_len)
            blob = tail[start : start + length] if start >= 0 else b""
            if len(blob) != length:
                blob = self.repo.store.get_range(key, offset, length)
            return decode_header(self.repo.open_blob(key, blob, ObjectType.PACK_HEADER))
        except PackFormatError as exc:
            raise self.repo.integrity(key, None, f"has a damaged header ({exc})") from None


def random_index_id() -> str:
    """32 random hex digits."""
    return os.urandom(16).hex()
