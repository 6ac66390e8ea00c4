"""Content-defined chunking (FastCDC) and compression (zstd or LZ4) of a byte stream.

Chunks are cut by pyfastcdc from a stream with a bounded buffer (at most a
couple of `max_size` windows), so memory does not grow with the input. The
parameters are recorded in the repository config: every writer of a repository
cuts the same way, which is what makes deduplication work.

Chunk payload (the plaintext inside a CHUNK or MANIFEST envelope): one byte
compression marker, then the body: 0 = stored, 1 = one zstd frame, 2 = one LZ4 frame
(docs/FORMAT.md §4). Chunks are compressed as their source is configured (`compression`);
manifests, index objects, pack headers and WAL files always with zstd. Decompression
dispatches on the marker and is bounded: a frame that claims, or produces, more than the
caller expects is refused before its output is allocated.

This module is the one home of `zstandard` and `lz4`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, assert_never, runtime_checkable

import lz4.frame
import zstandard
from pyfastcdc import FastCDC

COMPRESSION_NONE = 0
COMPRESSION_ZSTD = 1
COMPRESSION_LZ4 = 2
ZSTD_LEVEL = 1  # docs/PERFORMANCE.md ("CPU per GB"): half the CPU of level 3, same ratio on dumps

Compression = Literal["zstd", "lz4"]
"""How a source's chunks are compressed (the `compression` setting of a source)."""
DEFAULT_COMPRESSION: Compression = "zstd"


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC bounds in bytes. pyfastcdc's mean chunk size is about `avg + min`."""

    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 4 * 1024 * 1024

    def to_json(self) -> dict[str, int]:
        return {"min_size": self.min_size, "avg_size": self.avg_size, "max_size": self.max_size}


DEFAULT_PARAMS = ChunkerParams()


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _ReadAdapter:
    """pyfastcdc calls `read(n)`; forward to the source's reader."""

    def __init__(self, reader: _Readable) -> None:
        self._reader = reader

    def read(self, n: int) -> bytes:
        return self._reader.read(n)


@runtime_checkable
class DirectReader(Protocol):
    """A reader that fills the chunker's buffer itself (a dump tool's pipe), saving the
    intermediate `bytes` of each read and its copy."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buf: memoryview, /) -> int: ...


class _ReadIntoAdapter:
    def __init__(self, reader: DirectReader) -> None:
        self._reader = reader

    def readinto(self, buf: memoryview) -> int:
        return self._reader.readinto(buf)


def chunk_views(reader: _Readable, params: ChunkerParams = DEFAULT_PARAMS) -> Iterator[memoryview]:
    """Cut the stream into content-defined chunks, each a view of the chunker's buffer that
    is valid until the next one is asked for (copy what outlives it: `ChunkBuffers`)."""
    cdc = FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size)
    adapter = _ReadIntoAdapter(reader) if isinstance(reader, DirectReader) else _ReadAdapter(reader)
    for chunk in cdc.cut_stream(adapter):
        yield memoryview(chunk.data)


def chunks(reader: _Readable, params: ChunkerParams = DEFAULT_PARAMS) -> Iterator[bytes]:
    """Cut the stream into content-defined chunks, each a fresh `bytes`."""
    for view in chunk_views(reader, params):
        yield bytes(view)


class ChunkBuffers:
    """Chunk buffers reused from one chunk to the next, for chunks handed to other threads.

    A fresh `bytes` per chunk costs more than its copy: a large allocation may be mapped
    from the kernel and unmapped again (glibc's mmap threshold), and every page of it is
    then zeroed and faulted in anew. A
    buffer is taken for each chunk in flight and given back once it is processed, so there
    are never more buffers than chunks in flight at once, each `max_size` bytes."""

    def __init__(self, max_size: int) -> None:
        self._size = max_size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, data: memoryview) -> memoryview:
        """A copy of `data` in a buffer of the pool (a new one when none is free)."""
        with self._lock:
            buf = self._free.pop() if self._free else None
        if buf is None:
            buf = bytearray(self._size)
        view = memoryview(buf)[: len(data)]
        view[:] = data
        return view

    def give(self, view: memoryview) -> None:
        """Return the buffer under `view` (from `take`); the caller no longer uses it."""
        buf = view.obj
        if isinstance(buf, bytearray) and len(buf) == self._size:
            with self._lock:
                self._free.append(buf)


class _Contexts(threading.local):
    """One compressor and decompressor per thread: costly to build, not thread-safe."""

    zc: zstandard.ZstdCompressor | None = None
    zd: zstandard.ZstdDecompressor | None = None


_local = _Contexts()


def _compressor() -> zstandard.ZstdCompressor:
    if _local.zc is None:
        _local.zc = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0)
    return _local.zc


def _decompressor() -> zstandard.ZstdDecompressor:
    if _local.zd is None:
        _local.zd = zstandard.ZstdDecompressor()
    return _local.zd


_STORED, _ZSTD, _LZ4 = (bytes([m]) for m in (COMPRESSION_NONE, COMPRESSION_ZSTD, COMPRESSION_LZ4))


Parts = tuple[bytes, bytes | memoryview]  # a chunk payload's marker and body


def compress_parts(
    data: bytes | memoryview, compression: Compression = DEFAULT_COMPRESSION
) -> Parts:
    """The chunk payload as its marker and body, unjoined (`compress` joins them): zstd at
    ZSTD_LEVEL (single-threaded) or one LZ4 frame, or `data` itself when that is not
    smaller."""
    if compression == "zstd":
        marker, body = _ZSTD, _compressor().compress(data)
    elif compression == "lz4":
        marker, body = _LZ4, _lz4(data)
    else:
        assert_never(compression)
    if len(body) >= len(data):
        return _STORED, data
    return marker, body


def _lz4(data: bytes | memoryview) -> bytes:
    """One LZ4 frame holding its content size (the bound a reader checks first), without
    checksums: the envelope around it is authenticated, and the chunk's id is checked."""
    body: bytes = lz4.frame.compress(
        data, store_size=True, content_checksum=False, block_checksum=False
    )
    return body


def compress(data: bytes | memoryview, compression: Compression = DEFAULT_COMPRESSION) -> bytes:
    """The chunk payload: zstd at ZSTD_LEVEL (single-threaded) or LZ4, or stored when that
    is not smaller."""
    marker, body = compress_parts(data, compression)
    return marker + body


class PayloadError(Exception):
    """A payload is not a valid compression marker + body."""


class UnknownCompressionError(PayloadError):
    """A payload's marker names a compression this version does not know (a newer
    recoveryd's): the payload is not damaged, this reader is too old for it."""


def decompress(payload: bytes, max_size: int = 1 << 30) -> bytes:
    """Inverse of `compress`, at most `max_size` bytes; PayloadError when the payload is
    malformed, its marker unknown, or its frame claims or produces more than `max_size`."""
    if not payload:
        raise PayloadError("empty payload")
    marker = payload[0]
    if marker == COMPRESSION_NONE:
        return payload[1:]
    body = memoryview(payload)[1:]  # read in place: no copy of the body without its marker
    if marker == COMPRESSION_ZSTD:
        return _unzstd(body, max_size)
    if marker == COMPRESSION_LZ4:
        return _unlz4(body, max_size)
    raise UnknownCompressionError(
        f"unknown compression marker {marker} (written by a newer recoveryd?); "
        "upgrade recoveryd to read it"
    )


def _too_large(what: str, size: int | None, max_size: int) -> PayloadError:
    claim = f" of {size} bytes" if size is not None else ""
    return PayloadError(f"{what} frame{claim} is more than the {max_size} bytes expected")


def _unzstd(body: memoryview, max_size: int) -> bytes:
    try:
        # zstandard allocates the size a frame's header claims, whatever max_output_size
        # says: check the claim first (-1: not in the header; the output is then bounded)
        claimed = zstandard.frame_content_size(body)
        if claimed > max_size:
            raise _too_large("zstd", claimed, max_size)
        data: bytes = _decompressor().decompress(body, max_output_size=max_size)
    except zstandard.ZstdError as exc:
        raise PayloadError(f"zstd: {exc}") from None
    return data


def _unlz4(body: memoryview, max_size: int) -> bytes:
    try:
        claimed = lz4.frame.get_frame_info(body)["content_size"]  # 0: not in the header
        if claimed > max_size:
            raise _too_large("LZ4", claimed, max_size)
        # the output buffer is max_size at most, whatever the frame says or does
        d = lz4.frame.LZ4FrameDecompressor()
        data: bytes = d.decompress(body, max_length=max_size)
        if not d.eof and len(data) == max_size and d.decompress(b"", max_length=1):
            raise _too_large("LZ4", None, max_size)
    except RuntimeError as exc:  # what lz4 raises for a malformed frame
        raise PayloadError(f"lz4: {exc}") from None
    if not d.eof:
        raise PayloadError("lz4: the frame is truncated")
    if d.unused_data:
        raise PayloadError("lz4: bytes follow the frame")
    return data
