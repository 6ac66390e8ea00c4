"""Helpers shared by the source tests."""

from __future__ import annotations

import io
from pathlib import Path

import psutil

from recoveryd.sources.base import SnapshotReader


def read_all(reader: SnapshotReader, block: int = 256 * 1024) -> bytes:
    """The whole stream of a snapshot, then `finish()` (which raises on a failed dump)."""
    out = io.BytesIO()
    while data := reader.read(block):
        out.write(data)
    reader.finish()
    return out.getvalue()


def children_named(name: str) -> list[psutil.Process]:
    """Our descendant processes whose executable name is `name` (one that ends while it is
    being looked at is not counted)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name() == name:
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


def cmdlines_containing(secret: str) -> list[str]:
    """Command lines of every process on the machine that contain `secret`."""
    hits = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if secret.encode() in raw:
            hits.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return hits


class FailingAfter(io.RawIOBase):
    """A snapshot stream that breaks after `limit` bytes, as one does when a chunk fails
    authentication half-way through a restore."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data, self._left = io.BytesIO(data), limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            raise RuntimeError("chunk 42 failed authentication")
        chunk = self._data.read(min(size if size >= 0 else self._left, self._left))
        self._left -= len(chunk)
        return chunk
