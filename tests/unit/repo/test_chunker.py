"""Chunk payloads (docs/FORMAT.md §4): one marker byte, then the body (stored, a zstd frame
or an LZ4 frame). Decompression is bounded by the size the caller expects: a frame that
claims or produces more is refused before its output is allocated."""

from __future__ import annotations

import ast
import random
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import lz4.frame
import pytest

from recoveryd.repo import chunker
from recoveryd.repo.chunker import Compression, PayloadError
from tests.unit.repo.helpers import text_data

MIB = 1024 * 1024
SRC = Path(__file__).resolve().parents[3] / "src" / "recoveryd"
# what reading up to 1 MiB may allocate: the output, and lz4's copy of it into `bytes`
BOUND_PEAK = 4 * MIB
MARKERS = {"zstd": chunker.COMPRESSION_ZSTD, "lz4": chunker.COMPRESSION_LZ4}


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
    assert peak_while(payload, MIB) < BOUND_PEAK


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


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_payloads_round_trip_with_the_marker_of_their_compression(
    compression: Compression,
) -> None:
    """Compressible data gets the marker of the compression asked for and comes back
    identical at exactly its size; incompressible data is stored (marker 0) either way."""
    data = text_data(3000)
    payload = chunker.compress(data, compression)
    assert payload[0] == MARKERS[compression]
    assert len(payload) < len(data)
    assert chunker.decompress(payload, max_size=len(data)) == data
    marker, body = chunker.compress_parts(memoryview(data), compression)
    assert marker + body == payload
    noise = random.Random(1).randbytes(100_000)
    stored = chunker.compress(noise, compression)
    assert stored[0] == chunker.COMPRESSION_NONE
    assert chunker.decompress(stored, max_size=len(noise)) == noise


def test_an_lz4_payload_is_one_frame_with_its_size_and_no_checksums() -> None:
    """Marker 2's body is one LZ4 frame (lz4.frame) that states its content size (the
    bound a reader checks first) and carries no checksums (the envelope is authenticated)."""
    data = text_data(3000)
    body = chunker.compress(data, "lz4")[1:]
    info = lz4.frame.get_frame_info(body)
    assert info["content_size"] == len(data)
    assert not info["block_checksum"] and not info["content_checksum"]
    assert lz4.frame.decompress(body) == data


def test_an_lz4_frame_larger_than_expected_is_refused_without_allocating_it(
    traced: None,
) -> None:
    """An LZ4 frame of 16 MiB read where at most 1 MiB is expected is refused, whether its
    header states the size or not, and its 16 MiB are never allocated."""
    with_size = chunker.compress(bytes(16 * MIB), "lz4")
    assert with_size[0] == chunker.COMPRESSION_LZ4
    assert peak_while(with_size, MIB) < BOUND_PEAK
    without = lz4.frame.compress(bytes(16 * MIB), store_size=False)
    assert lz4.frame.get_frame_info(without)["content_size"] == 0
    assert peak_while(bytes([chunker.COMPRESSION_LZ4]) + without, MIB) < BOUND_PEAK


def test_an_lz4_frame_claiming_an_impossible_size_is_refused() -> None:
    """An LZ4 frame whose header claims a petabyte is refused before anything is read."""
    header = lz4.frame.LZ4FrameCompressor().begin(source_size=2**50)
    payload = bytes([chunker.COMPRESSION_LZ4]) + header + b"\0" * 64
    with pytest.raises(PayloadError, match="more than the 4096 bytes expected"):
        chunker.decompress(payload, max_size=4096)


def test_an_lz4_frame_of_exactly_the_expected_size_is_read() -> None:
    """The bound is inclusive: a frame without its size in the header that produces
    exactly `max_size` bytes is read; one byte more is refused."""
    data = text_data(500)
    payload = bytes([chunker.COMPRESSION_LZ4]) + lz4.frame.compress(data, store_size=False)
    assert chunker.decompress(payload, max_size=len(data)) == data
    with pytest.raises(PayloadError, match="more than"):
        chunker.decompress(payload, max_size=len(data) - 1)


def test_a_damaged_lz4_frame_is_a_payload_error() -> None:
    """A truncated frame, bytes after the frame, and bytes that are no frame are each a
    PayloadError (an integrity error to the repository), never an exception of lz4's."""
    data = text_data(3000)
    payload = chunker.compress(data, "lz4")
    for bad in (payload[:-20], payload + b"tail", bytes([chunker.COMPRESSION_LZ4]) + b"garbage"):
        with pytest.raises(PayloadError, match="lz4"):
            chunker.decompress(bad, max_size=len(data))


def test_the_compression_libraries_have_one_home() -> None:
    """Only repo/chunker.py imports zstandard or lz4."""
    homes = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("zstandard", "lz4") for n in names):
                homes.add(path.relative_to(SRC).as_posix())
    assert homes == {"repo/chunker.py"}
