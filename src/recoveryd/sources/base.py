"""The Source interface: a database or directory as a byte stream, and back.

A source produces one consistent snapshot as a stream of bytes (a dump, a
SQLite file image, a tar stream) and restores such a stream into a
destination. Dump tools run through a CommandRunner, locally
(`sources/local.py`) or on the database host over SSH (`remote/`), so every
source works `via_ssh` without knowing it.

Contract:
- `snapshot()` starts the dump and returns a SnapshotReader; `info` is filled
  before the first `read` returns (engine version, consistency point).
- `read(n)` returns up to n bytes, b"" at the end of the stream.
- After EOF the caller MUST call `finish()` before committing anything: it
  waits for the tool and raises SourceError naming the source when the dump
  failed (bad password, missing database, tool missing, killed). A stream
  that ended early is never mistaken for a complete one.
- `abort()` stops the dump and releases everything (idempotent).
- `restore(stream, dest, info)` consumes the stream into `dest` (a DSN, a
  database path or a directory) and raises SourceError on failure.

A source that dumps with several processes returns a `MultiStream` from
`snapshot()` instead: named parts, each a SnapshotReader already started, all
at one consistency point. Each part is read to its end and `finish()`ed (a
part that failed raises SourceError naming it); the MultiStream's own
`finish()` then releases the consistency point, `abort()` stops every part.
Such a source restores with `restore_parts(open_part, names, dest, info)`,
where `open_part(name)` gives a fresh reader of one part's stream (a part may
be read more than once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from recoveryd.errors import SourceError


@dataclass(frozen=True)
class SourceInfo:
    """What the manifest records about how the stream was made."""

    kind: str  # postgresql | mysql | sqlite | directory
    stream_format: str  # e.g. "pg_dump-custom", "mysqldump-sql", "sqlite-db", "tar-pax"
    engine_version: str | None = None
    consistency: Mapping[str, str] = field(default_factory=dict)  # e.g. {"lsn": "0/3000060"}
    extra: Mapping[str, str] = field(default_factory=dict)
    # how many bytes the stream will have, when known beforehand (exactly or as an estimate);
    # for progress only, never recorded
    expected_size: int | None = None


class ByteReader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@runtime_checkable
class ViewReader(Protocol):
    """A reader that can lend its bytes without copying them (a snapshot being restored):
    `read_view(n)` returns up to n bytes as a view (empty at the end)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def read_view(self, size: int = -1, /) -> memoryview: ...


class ClosableReader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None:
        """Release what the reader holds (idempotent)."""
        ...


class SnapshotReader(Protocol):
    info: SourceInfo

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...

    def finish(self) -> None:
        """Wait for the dump to end; SourceError when it did not succeed."""
        ...

    def abort(self) -> None:
        """Stop the dump now; idempotent."""
        ...


class MultiStream:
    """A snapshot made of several named streams (parts) at one consistency point.

    `release(ok)` runs once, at `finish()` (ok) or `abort()` (not ok): it ends what
    holds the consistency point (an open transaction) and removes secret files.
    """

    def __init__(
        self,
        info: SourceInfo,
        parts: Sequence[tuple[str, SnapshotReader]],
        release: Callable[[bool], None],
    ) -> None:
        self.info = info
        self.parts = tuple(parts)
        self._release = release
        self._done = False

    def finish(self) -> None:
        """Every part has been finished: release the consistency point."""
        if not self._done:
            self._done = True
            self._release(True)

    def abort(self) -> None:
        """Stop every part now (idempotent)."""
        for _, part in self.parts:
            with contextlib.suppress(Exception):
                part.abort()
        if not self._done:
            self._done = True
            self._release(False)


class Source(Protocol):
    name: str
    kind: str

    def snapshot(self) -> SnapshotReader | MultiStream:
        """Start a consistent snapshot stream (or several, as parts)."""
        ...

    def restore(self, stream: ByteReader, dest: str, info: SourceInfo) -> None:
        """Restore a stream made by `snapshot` into `dest`."""
        ...


@runtime_checkable
class PartedSource(Protocol):
    """A source whose snapshots may be made of parts (a `MultiStream`)."""

    def restore_parts(
        self,
        open_part: Callable[[str], ClosableReader],
        names: Sequence[str],
        dest: str,
        info: SourceInfo,
        *,
        password: str | None = None,
    ) -> None:
        """Restore the parts `names` (each read through `open_part`) into `dest`."""
        ...


class Process(Protocol):
    """A running command: local subprocess or remote over SSH."""

    def read(self, size: int = -1, /) -> bytes:
        """Read from the command's stdout; b"" at its end."""
        ...

    def write(self, data: bytes, /) -> None:
        """Write to the command's stdin."""
        ...

    def close_stdin(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int:
        """Exit status; raises TimeoutError when it does not end in time."""
        ...

    def stderr_text(self) -> str:
        """What the command wrote to stderr (bounded, for error messages)."""
        ...

    def kill(self) -> None: ...


class CommandRunner(Protocol):
    """Starts commands from argument lists, never through a shell."""

    description: str  # "local" or "ssh recoveryd@db1:22", for error messages

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False
    ) -> Process: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        """Run to completion: (exit status, stdout, stderr)."""
        ...


def refuse_uri(source: str, kind: str, dest: str) -> None:
    """A file or directory restore refuses a destination written as a URI (`postgresql://…`):
    a mistaken kind of destination must fail, not become folders named after a DSN."""
    scheme, sep, _ = dest.partition("://")
    if sep and scheme.replace("+", "").isalnum():
        raise SourceError(
            f"source {source}: the destination is a {scheme}:// URI, but a {kind} snapshot "
            "restores to a path; give a path"
        )
