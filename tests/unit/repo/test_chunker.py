"""Chunk payloads (docs/FORMAT.md §4): one marker byte, then the body. Decompression is
bounded by the size the caller expects: a frame that claims or produces more is refused
before its output is allocated."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterator

import pytest

from recoveryd.repo import chunker
from recoveryd.repo.chunker import PayloadError

MIB = 1024 * 1024


def zstd_frame_claiming(size: int, body: bytes) -> bytes:
    """A zstd frame (RFC 8878) whose header claims `size` bytes and holds `body` as one raw
    block: single segment, an 8-byte content size, no checksum."""
    header = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", size)
    return header + (1 | len(body) << 3).to_bytes(3, "little") + body


@pytest.fixture
def traced() -> Iterator[None]:
    """Python's allocator traced (the compression libraries allocate their output there)."""
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def peak_while(payload: bytes, max_size: int) -> int:
    """Bytes allocated at the peak of a refused `decompress(payload, max_size)`."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    with pytest.raises(PayloadError, match="more than"):
        chunker.decompress(payload, max_size=max_size)
    return tracemalloc.get_traced_memory()[1] - before


def test_a_zstd_frame_larger_than_expected_is_refused_without_allocating_it(
    traced: None,
) -> None:
    """A zstd frame of 16 MiB (its size in its header) read where at most 1 MiB is expected
    is refused, and its 16 MiB are never allocated."""
    payload = chunker.compress(bytes(16 * MIB))
    assert payload[0] == chunker.COMPRESSION_ZSTD
    assert peak_while(payload, MIB) < 2 * MIB


def test_a_zstd_frame_claiming_an_impossible_size_is_refused() -> None:
    """A zstd frame whose header claims a petabyte is a PayloadError, not an attempt to
    allocate a petabyte (MemoryError)."""
    payload = bytes([chunker.COMPRESSION_ZSTD]) + zstd_frame_claiming(2**50, b"abc")
    with pytest.raises(PayloadError, match="more than the 4096 bytes expected"):
        chunker.decompress(payload, max_size=4096)
    honest = bytes([chunker.COMPRESSION_ZSTD]) + zstd_frame_claiming(3, b"abc")
    assert chunker.decompress(honest, max_size=3) == b"abc"


def test_a_zstd_frame_without_a_size_that_produces_more_is_refused() -> None:
    """A zstd frame whose header does not give its size is cut at the bound and refused."""
    import zstandard

    body = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(MIB))
    with pytest.raises(PayloadError):
        chunker.decompress(bytes([chunker.COMPRESSION_ZSTD]) + body, max_size=4096)


def test_an_unknown_marker_is_a_clear_error() -> None:
    """A marker this version does not know (a newer writer's) is refused by number, with
    the way out; an empty payload is refused too."""
    with pytest.raises(PayloadError, match=r"unknown compression marker 200.*upgrade recoveryd"):
        chunker.decompress(bytes([200]) + b"body")
    with pytest.raises(PayloadError, match="empty"):
        chunker.decompress(b"")
