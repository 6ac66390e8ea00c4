"""The snapshot pipeline: one read of a source feeds every target repository.

    source.read → FastCDC chunks → zstd (once) → per target: keyed id,
    skip if present, seal, upload (bounded parallelism) → manifests last

Memory is bounded independently of the input: the chunker holds a few
`max_size` windows, and at most `gate.concurrency(n)` chunks are in flight
(each at most raw + compressed + sealed ≈ 3 × max chunk size). At every chunk
boundary the pipeline calls `gate.checkpoint()` (pause / cancel) and, before
each upload, `gate.throttle(nbytes)`. On any error or interruption the reader
is aborted, no manifest is written and the error is re-raised: a snapshot is
complete and listed, or absent (its uploaded chunks are collected by prune).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recoveryd import __version__
from recoveryd.flow import OPEN_GATE, Gate, Progress, ProgressCallback
from recoveryd.model import SnapshotInfo
from recoveryd.repo import chunker
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.layout import chunk_key
from recoveryd.repo.manifest import ChunkRef, Manifest
from recoveryd.repo.repository import Repository
from recoveryd.sources.base import SnapshotReader
from recoveryd.stores.base import Retention


def new_snapshot_id() -> str:
    """16 random hex digits."""
    return os.urandom(8).hex()


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SnapshotMeta:
    """What the caller knows about the snapshot beyond the stream itself."""

    source: str
    classification: str = "internal"
    snapshot_id: str = field(default_factory=new_snapshot_id)
    hostname: str = field(default_factory=socket.gethostname)
    tool_version: str = f"recoveryd {__version__}"
    clock: Callable[[], datetime] = _utcnow


class _Target:
    """Per-repository state of one run: what exists, what this run stored."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.existing = repo.chunk_ids()
        self.extended: set[str] = set()
        self.retention: Retention | None = repo.retention()
        self.stored = 0
        self.refs: dict[int, ChunkRef] = {}


class _Pipeline:
    def __init__(
        self, targets: list[_Target], gate: Gate, progress: ProgressCallback | None
    ) -> None:
        self.targets = targets
        self.gate = gate
        self.callback = progress
        self.progress = Progress()
        self.guard = threading.Lock()
        self.slots = threading.Condition()
        self.in_flight = 0
        self.error: BaseException | None = None
        self.configured = max(t.repo.concurrency for t in targets)

    def process(self, index: int, data: bytes) -> None:
        payload = chunker.compress(data)
        new_bytes = 0
        for t in self.targets:
            cid = t.repo.chunk_id(data)
            t.refs[index] = ChunkRef(cid, len(data))
            with self.guard:
                fresh = cid not in t.existing
                t.existing.add(cid)
                extend = not fresh and t.retention is not None and cid not in t.extended
                if extend:
                    t.extended.add(cid)
            if fresh:
                self.gate.throttle(len(payload))
                n = t.repo.put_object(
                    chunk_key(cid), ObjectType.CHUNK, payload, retention=t.retention
                )
                new_bytes += n
                with self.guard:
                    t.stored += n
            elif extend and t.retention is not None:
                t.repo.store.extend_retention(chunk_key(cid), t.retention)
        with self.guard:
            self.progress.stored_bytes += new_bytes
            self.progress.new_chunks += 1 if new_bytes else 0

    def done(self, fut: Future[None]) -> None:
        exc = fut.exception()
        with self.slots:
            self.in_flight -= 1
            if exc is not None and self.error is None:
                self.error = exc
            self.slots.notify_all()

    def wait_for_slot(self) -> None:
        with self.slots:
            while self.error is None and self.in_flight >= max(
                1, self.gate.concurrency(self.configured)
            ):
                self.slots.wait(0.5)
            if self.error is not None:
                raise self.error
            self.in_flight += 1

    def drain(self) -> None:
        with self.slots:
            while self.in_flight > 0:
                self.slots.wait(0.5)
            if self.error is not None:
                raise self.error

    def report(self, nbytes: int) -> None:
        with self.guard:
            self.progress.read_bytes += nbytes
            self.progress.chunks += 1
        if self.callback is not None:
            self.callback(self.progress)


def write_snapshot(
    reader: SnapshotReader,
    repos: Sequence[Repository],
    meta: SnapshotMeta,
    *,
    gate: Gate = OPEN_GATE,
    progress: ProgressCallback | None = None,
) -> list[SnapshotInfo]:
    """Snapshot `reader` into every repository of `repos`; one SnapshotInfo per repository.

    Takes a shared lock on each repository for the duration. Chunk boundaries
    follow the first repository's chunker parameters. Raises whatever stopped
    the snapshot (SourceError from `reader.finish()`, StoreError,
    InterruptedOperation...) after aborting the reader; nothing is committed then.
    """
    if not repos:
        raise ValueError("write_snapshot needs at least one repository")
    locks = []
    try:
        for repo in repos:
            locks.append(repo.lock(operation="backup"))
        return _run(reader, list(repos), meta, gate, progress)
    except BaseException:
        reader.abort()
        raise
    finally:
        for lock in locks:
            lock.release()


def _run(
    reader: SnapshotReader,
    repos: list[Repository],
    meta: SnapshotMeta,
    gate: Gate,
    progress: ProgressCallback | None,
) -> list[SnapshotInfo]:
    start = meta.clock()
    pipe = _Pipeline([_Target(r) for r in repos], gate, progress)
    pipe.progress.total = reader.info.expected_size
    size = 0
    count = 0
    pool = ThreadPoolExecutor(max_workers=pipe.configured, thread_name_prefix="upload")
    try:
        for data in chunker.chunks(reader, repos[0].config.chunker):
            gate.checkpoint()
            pipe.wait_for_slot()
            fut = pool.submit(pipe.process, count, data)
            fut.add_done_callback(pipe.done)
            size += len(data)
            count += 1
            pipe.report(len(data))
        gate.checkpoint()
        pipe.drain()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    reader.finish()
    end = meta.clock()
    info = reader.info
    out = []
    for t in pipe.targets:
        manifest = Manifest(
            id=meta.snapshot_id,
            source=meta.source,
            kind=info.kind,
            stream_format=info.stream_format,
            engine_version=info.engine_version,
            classification=meta.classification,
            consistency=dict(info.consistency),
            extra=dict(info.extra),
            start_time=start,
            end_time=end,
            size=size,
            stored_size=t.stored,
            chunks=tuple(t.refs[i] for i in range(count)),
            tool_version=meta.tool_version,
            hostname=meta.hostname,
        )
        t.repo.write_manifest(manifest)
        out.append(manifest.info(t.repo.name))
    return out
