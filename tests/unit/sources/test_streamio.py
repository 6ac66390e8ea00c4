"""Feeding a stream into a local command's stdin, as restores do (a real `sha256sum`)."""

from __future__ import annotations

import hashlib
import io

import pytest

from recoveryd.sources.base import ViewReader
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.streamio import feed

DATA = bytes(range(256)) * 20_000  # 5 MiB: several pipe buffers and view blocks


class _Bytes:
    """A plain reader (`read(n)` only)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._buf.read(size)


class _Views(_Bytes):
    """A reader that lends views of at most 300 000 bytes (a restore lends its chunks)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._view = memoryview(data)
        self.lent = 0

    def read_view(self, size: int = -1, /) -> memoryview:
        take = min(300_000, len(self._view) if size < 0 else size)
        out, self._view = self._view[:take], self._view[take:]
        self.lent += len(out)
        return out


def _digest_of_feed(stream: _Bytes) -> str:
    runner = LocalRunner()
    proc = runner.start(["sh", "-c", "sha256sum >&2"], stdin=True)
    assert feed(proc, stream) == 0
    return proc.stderr_text().split()[0]


@pytest.mark.parametrize("reader", [_Bytes, _Views])
def test_the_command_receives_every_byte_in_order(reader: type[_Bytes]) -> None:
    """The command reads exactly the stream, whether the stream copies its bytes out
    (`read`) or lends them (`read_view`)."""
    assert _digest_of_feed(reader(DATA)) == hashlib.sha256(DATA).hexdigest()


def test_a_lending_stream_is_written_from_its_views() -> None:
    """A stream that lends its bytes is fed through `read_view` (no copy per block)."""
    stream = _Views(DATA)
    assert isinstance(stream, ViewReader)
    _digest_of_feed(stream)
    assert stream.lent == len(DATA)
