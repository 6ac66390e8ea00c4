"""Reading a snapshot back as a stream, with parallel bounded read-ahead of merged ranges."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from recoveryd.errors import RecoverydError
from recoveryd.repo import ranges
from recoveryd.repo.manifest import Manifest, StreamPart
from recoveryd.repo.ranges import Merge, Run

if TYPE_CHECKING:
    from recoveryd.repo.locks import Lock
    from recoveryd.repo.packs import Location
    from recoveryd.repo.repository import Repository


class RestoreReader:
    """A file-like reader (`read(n)`) of one snapshot's stream (or of one of its parts).

    The chunks are read in runs of consecutive chunks, each run by one worker, its chunks
    that lie near each other in a pack with one ranged request (`repo/ranges.py`). At
    most `readahead` runs are in flight or buffered, holding at most `readahead` x the
    chunker's maximum chunk size of plaintext (plus the run being returned), so memory
    does not grow with the snapshot. Every chunk is
    authenticated, decompressed and checked against its keyed id before any of its bytes
    is returned; the first bad chunk raises IntegrityError(snapshot=, obj=). Releases its
    lock and threads at EOF, on error and on `close()`.
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
        merge: Merge | None = None,
    ) -> None:
        self.repo = repo
        self.manifest = manifest
        chunks = manifest.chunks if part is None else manifest.part_chunks(part)
        self._lock = lock
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="restore")
        self._readahead = max(1, readahead)
        max_chunk = repo.config.chunker.max_size
        self._budget = self._readahead * max_chunk
        # a run is at most a worker's share of the budget, so that every worker has one
        merge = merge or Merge(max_plain=max(max_chunk, self._budget // max(1, workers)))
        self._runs = ranges.plan(chunks, self._locate, merge)
        self._held: Run | None = None  # planned, waiting for room in the budget
        self._pending: deque[tuple[Future[list[bytes]], int]] = deque()
        self._pending_plain = 0
        self._ready: deque[bytes] = deque()
        self._buf = memoryview(b"")
        self._closed = False
        self.bytes_read = 0

    def _locate(self, chunk_id: str) -> Location | None:
        try:
            return self.repo.chunks.index().get(chunk_id)
        except RecoverydError:  # read on its own, the chunk raises the error with its name
            return None

    def _fill(self) -> None:
        while len(self._pending) < self._readahead:
            run = self._held or next(self._runs, None)
            if run is None:
                return
            if self._pending and self._pending_plain + run.plain > self._budget:
                self._held = run
                return
            self._held = None
            read = self._pool.submit(self.repo.chunks.read_run, run, snapshot=self.manifest.id)
            self._pending.append((read, run.plain))
            self._pending_plain += run.plain

    def _take(self) -> bool:
        """Wait for the next run's chunks (refilling the read-ahead); False at the end."""
        self._fill()
        if not self._pending:
            return False
        read, plain = self._pending.popleft()
        self._pending_plain -= plain
        self._fill()
        self._ready.extend(read.result())
        return True

    def read_view(self, size: int = -1, /) -> memoryview:
        """Up to `size` bytes (the rest of the current chunk when -1) without copying them:
        a view of the chunk, valid as long as the caller keeps it; empty at the end."""
        if self._closed:
            return memoryview(b"")
        try:
            while not self._buf:
                if not self._ready and not self._take():
                    self.close()
                    return memoryview(b"")
                self._buf = memoryview(self._ready.popleft())
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
        for read, _ in self._pending:
            read.cancel()
        self._pending.clear()
        self._ready.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RestoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
