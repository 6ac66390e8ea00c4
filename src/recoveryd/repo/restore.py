"""Reading a snapshot back as a stream, with parallel bounded read-ahead."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from recoveryd.repo.manifest import Manifest, StreamPart

if TYPE_CHECKING:
    from recoveryd.repo.locks import Lock
    from recoveryd.repo.repository import Repository


class RestoreReader:
    """A file-like reader (`read(n)`) of one snapshot's stream (or of one of its parts).

    At most `readahead` chunks are in flight or buffered (memory ≈ readahead ×
    max chunk size). Every chunk is authenticated, decompressed and checked
    against its keyed id before any of its bytes is returned; the first bad
    chunk raises IntegrityError(snapshot=, obj=). Releases its lock and threads
    at EOF, on error and on `close()`.
    """

    def __init__(
        self,
        repo: Repository,
        manifest: Manifest,
        *,
        lock: Lock | None = None,
        workers: int = 4,
        readahead: int = 8,
        part: StreamPart | None = None,
    ) -> None:
        self.repo = repo
        self.manifest = manifest
        self._chunks = manifest.chunks if part is None else manifest.part_chunks(part)
        self._lock = lock
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="restore")
        self._pending: deque[Future[bytes]] = deque()
        self._next = 0
        self._readahead = max(1, readahead)
        self._buf = memoryview(b"")
        self._closed = False
        self.bytes_read = 0

    def _fill(self) -> None:
        chunks = self._chunks
        while len(self._pending) < self._readahead and self._next < len(chunks):
            ref = chunks[self._next]
            self._pending.append(
                self._pool.submit(
                    self.repo.read_chunk, ref.id, ref.length, snapshot=self.manifest.id
                )
            )
            self._next += 1

    def read_view(self, size: int = -1, /) -> memoryview:
        """Up to `size` bytes (the rest of the current chunk when -1) without copying them:
        a view of the chunk, valid as long as the caller keeps it; empty at the end."""
        if self._closed:
            return memoryview(b"")
        try:
            while not self._buf:
                self._fill()
                if not self._pending:
                    self.close()
                    return memoryview(b"")
                self._buf = memoryview(self._pending.popleft().result())
        except BaseException:
            self.close()
            raise
        take = len(self._buf) if size < 0 else min(size, len(self._buf))
        view, self._buf = self._buf[:take], self._buf[take:]
        self.bytes_read += take
        return view

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (all the rest when -1); b"" at the end."""
        first = self.read_view(size)
        if size >= 0 and len(first) in (0, size):
            return bytes(first)  # the usual case: one copy out of the chunk
        out = bytearray(first)
        while size < 0 or len(out) < size:
            view = self.read_view(-1 if size < 0 else size - len(out))
            if not view:
                break
            out += view
        return bytes(out)

    def readinto(self, b: memoryview | bytearray) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Stop read-ahead and release the lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RestoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
