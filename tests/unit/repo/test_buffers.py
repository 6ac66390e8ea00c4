"""Chunk buffers: a chunk handed to the upload threads is copied into a reused buffer."""

from __future__ import annotations

import threading

import pytest

from recoveryd.repo import SnapshotMeta, chunker, write_snapshot
from recoveryd.repo.chunker import ChunkBuffers
from tests.unit.repo.helpers import BytesReader, new_repo, text_data


def test_a_given_back_buffer_is_taken_again() -> None:
    """`take` copies the chunk into a buffer of the pool; once given back, the same buffer
    holds the next chunk, and a buffer still in use is never handed out twice."""
    pool = ChunkBuffers(16)
    first = pool.take(memoryview(b"abc"))
    second = pool.take(memoryview(b"defg"))
    assert (bytes(first), bytes(second)) == (b"abc", b"defg")
    assert first.obj is not second.obj
    pool.give(first)
    third = pool.take(memoryview(b"hi"))
    assert third.obj is first.obj and bytes(third) == b"hi"
    assert bytes(second) == b"defg"  # untouched while in use


class _CountingBuffers(ChunkBuffers):
    """Counts the buffers in use at once (the pipeline's own, observed)."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.used = self.peak = 0
        self.lock = threading.Lock()

    def take(self, data: memoryview) -> memoryview:
        with self.lock:
            self.used += 1
            self.peak = max(self.peak, self.used)
        return super().take(data)

    def give(self, view: memoryview) -> None:
        with self.lock:
            self.used -= 1
        super().give(view)


def test_a_backup_holds_no_more_buffers_than_chunks_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backup of many chunks through several upload threads restores byte for byte, and
    uses at most one buffer per upload in flight (`concurrency`), all given back."""
    made: list[_CountingBuffers] = []

    def counting(max_size: int) -> _CountingBuffers:
        made.append(_CountingBuffers(max_size))
        return made[-1]

    repo = new_repo(concurrency=3)
    data = text_data(20000)
    monkeypatch.setattr(chunker, "ChunkBuffers", counting)
    sid = write_snapshot(BytesReader(data), [repo], SnapshotMeta("s"))[0].id
    (pool,) = made
    assert len(repo.manifest(sid).chunks) > 20
    assert 1 <= pool.peak <= 3 and pool.used == 0
    assert repo.restore_stream(sid).read() == data
