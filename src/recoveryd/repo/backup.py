"""The snapshot pipeline: one read of a source feeds every target repository.

    source.read → FastCDC chunks → per target: keyed id, skip if present, else
    zstd or LZ4 (once for every target lacking it), seal, into the open pack (a full
    one is uploaded; bounded parallelism) → last packs and the run's index → manifests
    last

Memory is bounded independently of the input: the chunker holds a few
`max_size` windows, at most `gate.concurrency(n)` chunks are in flight
(each at most raw + compressed + sealed ≈ 3 × max chunk size), and each target
holds its open pack plus at most two full ones (`repo/packer.py`). At every chunk
boundary the pipeline calls `gate.checkpoint()` (pause / cancel) and, before
each upload, `gate.throttle(nbytes)`. On any error or interruption the reader
is aborted, no manifest is written and the error is re-raised: a snapshot is
complete and listed, or absent (its uploaded chunks are collected by prune).

Chunks are compressed with the source's `compression` (zstd by default, or LZ4); a
chunk's id is a keyed hash of its plaintext, so a chunk already stored with the other
algorithm is found and not stored again.

A source dumping with several processes gives a `MultiStream`: each part is
chunked by a thread of its own into the same upload pool, and the manifest
lists each part's chunks (docs/FORMAT.md §6). The first part that fails stops
every other part (they are aborted) and is the error raised.

With `min_targets` below the number of repositories, a target whose store fails
(StoreError: unreachable, timing out, refusing writes) is dropped from the run
and reported as missing, and the snapshot is committed to the others, as long
as at least `min_targets` remain; the daemon copies it there later.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recoveryd import __version__
from recoveryd.errors import StoreError
from recoveryd.flow import OPEN_GATE, Gate, Progress, ProgressCallback
from recoveryd.model import SnapshotInfo
from recoveryd.repo import chunker
from recoveryd.repo.chunker import ChunkerParams
from recoveryd.repo.locks import Lock
from recoveryd.repo.manifest import ChunkRef, Manifest, StreamPart
from recoveryd.repo.packer import ChunkSink
from recoveryd.repo.repository import Repository
from recoveryd.sources.base import MultiStream, SnapshotReader
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
    labels: Mapping[str, str] = field(default_factory=dict)  # into the manifest's `extra`


@dataclass(frozen=True)
class SnapshotWrite:
    """What one snapshot run committed: a SnapshotInfo per target that holds it, and the
    error of each target that was dropped (by name)."""

    infos: tuple[SnapshotInfo, ...]
    missing: dict[str, StoreError]


class _Target:
    """Per-repository state of one run: what exists, what this run stored."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.existing = repo.chunk_ids()
        self.before = frozenset(self.existing)  # stored by earlier runs
        self.extended: set[str] = set()  # objects whose retention this run pushed
        self.retention: Retention | None = repo.retention()
        self.sink = ChunkSink(repo, self.retention)
        self.refs: dict[tuple[int, int], ChunkRef] = {}  # (part, index in part) -> chunk
        self.failed: StoreError | None = None

    @property
    def stored(self) -> int:
        return self.sink.stored


class _Pipeline:
    def __init__(
        self,
        targets: list[_Target],
        gate: Gate,
        progress: ProgressCallback | None,
        min_targets: int,
        compression: chunker.Compression,
    ) -> None:
        self.targets = targets
        self.compression = compression
        self.min_targets = min_targets
        self.gate = gate
        self.callback = progress
        self.progress = Progress()
        self.guard = threading.Lock()
        self.reporting = threading.Lock()
        self.slots = threading.Condition()
        self.in_flight = 0
        self.error: BaseException | None = None
        self.configured = max(t.repo.concurrency for t in targets)
        self.buffers = chunker.ChunkBuffers(targets[0].repo.config.chunker.max_size)

    def alive(self) -> list[_Target]:
        with self.guard:
            return [t for t in self.targets if t.failed is None]

    def lose(self, t: _Target, exc: StoreError) -> None:
        """Drop target `t` from the run; re-raise when too few targets remain."""
        with self.guard:
            if t.failed is None:
                t.failed = exc
            left = sum(1 for x in self.targets if x.failed is None)
        if left < self.min_targets:
            raise exc

    def process(self, index: tuple[int, int], data: memoryview) -> None:
        made: list[chunker.Parts] = []

        def payload() -> chunker.Parts:
            """Compressed when a target lacks the chunk, once for all of them (a chunk
            every target holds costs its id only)."""
            if not made:  # sealed as one without joining marker and body
                made.append(chunker.compress_parts(data, self.compression))
            return made[0]

        new_bytes = 0
        for t in self.alive():
            try:
                new_bytes += self._store(t, index, data, payload)
            except StoreError as exc:
                self.lose(t, exc)
        with self.guard:
            self.progress.stored_bytes += new_bytes
            self.progress.new_chunks += 1 if new_bytes else 0

    def _store(
        self,
        t: _Target,
        index: tuple[int, int],
        data: memoryview,
        payload: Callable[[], chunker.Parts],
    ) -> int:
        cid = t.repo.chunk_id(data)
        t.refs[index] = ChunkRef(cid, len(data))
        with self.guard:
            fresh = cid not in t.existing
            t.existing.add(cid)
            key = t.repo.chunks.object_of(cid) if cid in t.before else None
            extend = t.retention is not None and key is not None and key not in t.extended
            if extend and key is not None:
                t.extended.add(key)
        if fresh:
            parts = payload()
            self.gate.throttle(sum(len(p) for p in parts))
            return t.sink.add(cid, *parts)
        # An object this run wrote carries the run's retention already.
        if extend and key is not None and t.retention is not None:
            t.repo.store.extend_retention(key, t.retention)
        return 0

    def done(self, fut: Future[None]) -> None:
        # an upload cancelled by the pool's shutdown (the run is being stopped) has no result
        exc = None if fut.cancelled() else fut.exception()
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

    def fail(self, exc: BaseException) -> None:
        """Record `exc` (the first one wins): every part stops at its next chunk."""
        with self.slots:
            if self.error is None:
                self.error = exc
            self.slots.notify_all()

    def drain(self) -> None:
        """Wait for the uploads in flight; a stop requested meanwhile (the gate's checkpoint,
        between waits and outside the lock) ends the wait: the last packs of a large stream
        can take a while to upload, and a shutdown must not wait for them to commit."""
        while True:
            with self.slots:
                if self.in_flight == 0:
                    if self.error is not None:
                        raise self.error
                    return
                self.slots.wait(0.5)
            self.gate.checkpoint()

    def report(self, nbytes: int) -> None:
        with self.reporting:  # parts report from their own threads: one call at a time
            with self.guard:
                self.progress.read_bytes += nbytes
                self.progress.chunks += 1
            if self.callback is not None:
                self.callback(self.progress)


Reader = SnapshotReader | MultiStream
Shield = Callable[[], contextlib.AbstractContextManager[object]]
"""Entered while the manifests are written: `flow.StopSignal.shielded` of the stores' stop."""


def write_snapshot(
    reader: Reader,
    repos: Sequence[Repository],
    meta: SnapshotMeta,
    *,
    gate: Gate = OPEN_GATE,
    progress: ProgressCallback | None = None,
    compression: chunker.Compression = chunker.DEFAULT_COMPRESSION,
) -> list[SnapshotInfo]:
    """Snapshot `reader` into every repository of `repos`; one SnapshotInfo per repository.

    Takes a shared lock on each repository for the duration. Chunk boundaries
    follow the first repository's chunker parameters; new chunks are compressed with
    `compression` (every target stores the same payload). Raises whatever stopped
    the snapshot (SourceError from `reader.finish()`, StoreError,
    InterruptedOperation...) after aborting the reader; nothing is committed then.
    """
    written = write_snapshot_to(
        reader, repos, meta, gate=gate, progress=progress, compression=compression
    )
    return list(written.infos)


def write_snapshot_to(
    reader: Reader,
    repos: Sequence[Repository],
    meta: SnapshotMeta,
    *,
    min_targets: int | None = None,
    gate: Gate = OPEN_GATE,
    progress: ProgressCallback | None = None,
    compression: chunker.Compression = chunker.DEFAULT_COMPRESSION,
    commit_shield: Shield = contextlib.nullcontext,
) -> SnapshotWrite:
    """Like `write_snapshot`, but a target whose store fails is dropped (and named in
    `missing`) while at least `min_targets` (default: all) still take the snapshot.

    When fewer remain, the store error that dropped the last one needed is raised and
    nothing more is committed. (A failure while the manifests themselves are written
    can leave the snapshot committed on the targets written before it.)

    Past the last checkpoint the manifests are written inside `commit_shield()`: the
    stores' stop (`flow.StopSignal.shielded`, for up to `flow.COMMIT_GRACE`) does not
    cut that short, so a stop arriving then does not leave the snapshot committed on
    some targets only (unless a store still fails to answer after that grace).
    """
    if not repos:
        raise ValueError("write_snapshot needs at least one repository")
    need = len(repos) if min_targets is None else max(1, min(min_targets, len(repos)))
    locks: list[tuple[Repository, Lock]] = []
    missing: dict[str, StoreError] = {}
    try:
        for i, repo in enumerate(repos):
            try:
                locks.append((repo, repo.lock(operation="backup")))
            except StoreError as exc:
                missing[repo.name] = exc
                if len(locks) + len(repos) - i - 1 < need:
                    raise
        live = [r for r, _ in locks]
        return _run(reader, live, meta, gate, progress, need, missing, compression, commit_shield)
    except BaseException:
        reader.abort()
        raise
    finally:
        for repo, lock in locks:
            _release(lock, lost=repo.name in missing)


def _release(lock: Lock, *, lost: bool) -> None:
    """Release a backup lock; on a target that was dropped (its store did not answer) the
    lock is abandoned instead, to go stale, rather than waiting for the store's timeouts."""
    if lost:
        lock.abandon()
    else:
        lock.release()


def _targets(repos: list[Repository], need: int, missing: dict[str, StoreError]) -> list[_Target]:
    out: list[_Target] = []
    for i, repo in enumerate(repos):
        try:
            out.append(_Target(repo))
        except StoreError as exc:
            missing[repo.name] = exc
            if len(out) + len(repos) - i - 1 < need:
                raise
    return out


def _pump(
    pipe: _Pipeline,
    pool: ThreadPoolExecutor,
    part: int,
    reader: SnapshotReader,
    params: ChunkerParams,
) -> tuple[int, int]:
    """Chunk one stream into the upload pool: (bytes, chunks) it had."""
    size = count = 0
    for view in chunker.chunk_views(reader, params):
        pipe.gate.checkpoint()
        pipe.wait_for_slot()
        data = pipe.buffers.take(view)  # the chunker's buffer is reused for the next chunk
        fut = pool.submit(pipe.process, (part, count), data)
        fut.add_done_callback(functools.partial(_give_back, pipe.buffers, data))  # then:
        fut.add_done_callback(pipe.done)  # the slot is free once its buffer is
        size += len(data)
        count += 1
        pipe.report(len(data))
    return size, count


def _give_back(buffers: chunker.ChunkBuffers, data: memoryview, _: Future[None]) -> None:
    buffers.give(data)


def _pump_parts(
    pipe: _Pipeline, pool: ThreadPoolExecutor, reader: MultiStream, params: ChunkerParams
) -> list[tuple[int, int]]:
    """Chunk every part at once (a thread each), finishing each part at its end; on the
    first failure every part is aborted and that failure is raised."""

    def one(i: int, part: SnapshotReader) -> tuple[int, int]:
        try:
            counted = _pump(pipe, pool, i, part, params)
            part.finish()
        except BaseException as exc:
            pipe.fail(exc)
            raise
        return counted

    with ThreadPoolExecutor(len(reader.parts), thread_name_prefix="part") as readers:
        futs = [readers.submit(one, i, part) for i, (_, part) in enumerate(reader.parts)]
        done, _ = wait(futs, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            reader.abort()  # unblocks the other parts' reads
            wait(futs)
            with pipe.slots:
                first = pipe.error
            assert first is not None  # noqa: S101 - recorded by the part that failed first
            raise first
    return [f.result() for f in futs]


def _run(
    reader: Reader,
    repos: list[Repository],
    meta: SnapshotMeta,
    gate: Gate,
    progress: ProgressCallback | None,
    need: int,
    missing: dict[str, StoreError],
    compression: chunker.Compression,
    commit_shield: Shield,
) -> SnapshotWrite:
    start = meta.clock()
    pipe = _Pipeline(_targets(repos, need, missing), gate, progress, need, compression)
    pipe.progress.total = reader.info.expected_size
    params = pipe.targets[0].repo.config.chunker
    pool = ThreadPoolExecutor(max_workers=pipe.configured, thread_name_prefix="upload")
    try:
        if isinstance(reader, MultiStream):
            counts = _pump_parts(pipe, pool, reader, params)
        else:
            counts = [_pump(pipe, pool, 0, reader, params)]
        gate.checkpoint()
        pipe.drain()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    reader.finish()
    end = meta.clock()
    info = reader.info
    parts = _parts(reader, counts)
    for t in pipe.alive():
        try:
            t.sink.finish()  # the last pack and the run's index: before the manifest
        except StoreError as exc:
            pipe.lose(t, exc)
    gate.checkpoint()  # a stop requested while the last packs went up: no manifest anywhere
    out = []
    with commit_shield():  # past the last checkpoint a stop does not split the commit
        for t in pipe.alive():
            manifest = Manifest(
                id=meta.snapshot_id,
                source=meta.source,
                kind=info.kind,
                stream_format=info.stream_format,
                engine_version=info.engine_version,
                classification=meta.classification,
                consistency=dict(info.consistency),
                extra={**info.extra, **meta.labels},
                start_time=start,
                end_time=end,
                size=sum(size for size, _ in counts),
                stored_size=t.stored,
                chunks=tuple(t.refs[p, i] for p, (_, n) in enumerate(counts) for i in range(n)),
                tool_version=meta.tool_version,
                hostname=meta.hostname,
                parts=parts,
            )
            try:
                t.repo.write_manifest(manifest)
            except StoreError as exc:
                pipe.lose(t, exc)
                continue
            out.append(manifest.info(t.repo.name))
    missing.update({t.repo.name: t.failed for t in pipe.targets if t.failed is not None})
    return SnapshotWrite(tuple(out), dict(missing))


def _parts(reader: Reader, counts: list[tuple[int, int]]) -> tuple[StreamPart, ...]:
    """The manifest's parts of a MultiStream (none for one stream)."""
    if not isinstance(reader, MultiStream):
        return ()
    parts = []
    first = 0
    for (name, _), (size, count) in zip(reader.parts, counts, strict=True):
        parts.append(StreamPart(name, first, count, size))
        first += count
    return tuple(parts)
