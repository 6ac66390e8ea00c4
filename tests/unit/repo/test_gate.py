"""The pipeline pauses and stops at chunk boundaries, as the load governor requires."""

from __future__ import annotations

import threading

import pytest

from recoveryd.errors import InterruptedOperation
from recoveryd.flow import OpenGate, Progress
from recoveryd.repo import SnapshotMeta, write_snapshot
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import (
    CONTENT_PREFIXES,
    LAYOUTS,
    TINY_PACKS,
    BytesReader,
    new_repo,
    text_data,
)


class PausingGate:
    """Blocks at the 3rd checkpoint until the test releases it."""

    def __init__(self) -> None:
        self.calls = 0
        self.paused = threading.Event()
        self.release = threading.Event()
        self.throttled = 0
        self.lock = threading.Lock()

    def checkpoint(self) -> None:
        self.calls += 1
        if self.calls == 3:
            self.paused.set()
            assert self.release.wait(30)

    def throttle(self, nbytes: int) -> None:
        with self.lock:
            self.throttled += nbytes

    def concurrency(self, configured: int) -> int:
        return 1


def _chunks(store: MemoryStore) -> int:
    return sum(1 for k in store.objects if k.startswith(CONTENT_PREFIXES))


def test_pause_at_third_chunk_then_resume() -> None:
    """While the gate holds, at most the two admitted chunks are uploaded; release completes it."""
    store = MemoryStore()
    repo = new_repo(store)
    gate = PausingGate()
    data = text_data(20000)
    out: list[str] = []
    worker = threading.Thread(
        target=lambda: out.extend(
            s.id for s in write_snapshot(BytesReader(data), [repo], SnapshotMeta("s"), gate=gate)
        )
    )
    worker.start()
    assert gate.paused.wait(30)
    # chunks 1 and 2 were admitted; nothing else can be uploaded while paused
    assert _chunks(store) <= 2
    assert repo.snapshots() == []
    gate.release.set()
    worker.join(30)
    assert out
    assert repo.restore_stream(out[0]).read() == data
    assert gate.throttled > 0  # every upload asked the gate for bandwidth


def test_cancel_stops_cleanly_without_a_snapshot() -> None:
    """A cancelled gate raises InterruptedOperation at the next boundary; nothing is listed."""
    repo = new_repo()
    cancel = threading.Event()
    seen: list[Progress] = []

    def progress(p: Progress) -> None:
        seen.append(p)
        if p.chunks == 2:
            cancel.set()

    reader = BytesReader(text_data(20000))
    with pytest.raises(InterruptedOperation):
        write_snapshot(reader, [repo], SnapshotMeta("s"), gate=OpenGate(cancel), progress=progress)
    assert reader.aborted
    assert repo.snapshots() == []
    assert seen[-1].read_bytes > 0


class _CountingStore(MemoryStore):
    """Records how many chunk uploads run at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0
        self.count_lock = threading.Lock()
        self.release = threading.Event()

    def put(self, key: str, data: bytes, **kw: object) -> None:  # type: ignore[override]
        if key.startswith(CONTENT_PREFIXES):
            with self.count_lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            self.release.wait(0.01)  # hold the slot briefly so overlaps can happen
            with self.count_lock:
                self.active -= 1
        super().put(key, data, **kw)  # type: ignore[arg-type]


class _LimitGate(OpenGate):
    def concurrency(self, configured: int) -> int:
        return 2


@pytest.mark.parametrize("pack_size", LAYOUTS)
def test_uploads_in_flight_are_bounded_by_the_gate(pack_size: int | None) -> None:
    """No more chunks (or packs) are in flight than the gate allows: memory does not grow
    with input."""
    store = _CountingStore()
    repo = new_repo(store, concurrency=8, pack_size=pack_size)
    write_snapshot(BytesReader(text_data(20000)), [repo], SnapshotMeta("s"), gate=_LimitGate())
    assert 1 <= store.peak <= 2
    if pack_size is not None:
        assert sum(1 for k in store.objects if k.startswith("packs/")) > 2


def test_full_packs_in_memory_are_bounded_whatever_the_threads() -> None:
    """With eight upload threads, at most two full packs are being stored at once (a thread
    that fills a third waits), so the memory held in packs does not grow with the threads."""
    from recoveryd.repo.packer import MAX_UPLOADS

    store = _CountingStore()
    repo = new_repo(store, concurrency=8, pack_size=TINY_PACKS)
    data = text_data(40000)
    sid = write_snapshot(BytesReader(data), [repo], SnapshotMeta("s"))[0].id
    assert MAX_UPLOADS == 2
    assert 1 <= store.peak <= MAX_UPLOADS
    assert sum(1 for k in store.objects if k.startswith("packs/")) > 8
    assert repo.restore_stream(sid).read() == data


def test_an_upload_cancelled_by_a_stop_is_counted_without_an_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When a stop cancels uploads still queued (the pool's shutdown), their completion
    callback counts them out quietly: no CancelledError escapes into the log as a
    traceback next to the one-line "interrupted" message."""
    from concurrent.futures import Future

    from recoveryd.repo.backup import _Pipeline

    pipe = _Pipeline.__new__(_Pipeline)  # only the slot bookkeeping is exercised
    pipe.slots, pipe.in_flight, pipe.error = threading.Condition(), 1, None
    fut: Future[None] = Future()
    fut.add_done_callback(pipe.done)
    with caplog.at_level("ERROR"):
        assert fut.cancel()
    assert pipe.in_flight == 0 and pipe.error is None
    assert not [r for r in caplog.records if r.name == "concurrent.futures"]
