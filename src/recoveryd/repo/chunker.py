"""Content-defined chunking (FastCDC) and compression (zstd) of a byte stream.

Chunks are cut by pyfastcdc from a stream with a bounded buffer (at most a
couple of `max_size` windows), so memory does not grow with the input. The
parameters are recorded in the repository config: every writer of a repository
cuts the same way, which is what makes deduplication work.

Chunk payload (the plaintext inside a CHUNK or MANIFEST envelope): one byte
compression marker, then the body: 0 = stored, 1 = one zstd frame. Decompression is
bounded: a frame that claims, or produces, more than the caller expects is refused before
its output is allocated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import zstandard
from pyfastcdc import FastCDC

COMPRESSION_NONE = 0
COMPRESSION_ZSTD = 1
ZSTD_LEVEL = 1  # docs/PERFORMANCE.md ("CPU per GB"): half the CPU of level 3, same ratio on dumps


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

    A fresh `bytes` per chunk costs more than its copy: allocations of a megabyte and more
    are mapped from the kernel and unmapped again (MALLOC_MMAP_THRESHOLD_, see
    systemd/recoveryd.service), and every page of each is zeroed and faulted in anew. A
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


_STORED, _ZSTD = bytes([COMPRESSION_NONE]), bytes([COMPRESSION_ZSTD])


Parts = tuple[bytes, bytes | memoryview]  # a chunk payload's marker and body


def compress_parts(data: bytes | memoryview) -> Parts:
    """The chunk payload as its marker and body, unjoined (`compress` joins them): zstd at
    ZSTD_LEVEL (single-threaded), or `data` itself when that is not smaller."""
    body = _compressor().compress(data)
    if len(body) >= len(data):
        return _STORED, data
    return _ZSTD, body


def compress(data: bytes | memoryview) -> bytes:
    """The chunk payload: zstd at ZSTD_LEVEL (single-threaded), or stored when that is not
    smaller."""
    marker, body = compress_parts(data)
    return marker + body


class PayloadError(Exception):
    """A payload is not a valid compression marker + body."""


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
    raise PayloadError(
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
