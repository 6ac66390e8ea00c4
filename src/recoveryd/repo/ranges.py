"""Which chunks of a restore are read with one request. The stream's chunks are taken in
runs of consecutive chunks (at most `max_plain` plaintext bytes, at least one chunk);
within a run, the chunks of one pack are sorted by offset and read with one ranged
request per stretch whose gaps are at most `max_gap` bytes (read and dropped) and which
spans at most `max_request` bytes. Pure planning: the reading is
`chunkstore.Chunks.read_run`, which returns the run's chunks in stream order.

A backup appends a stream's chunks to its packs nearly in order (its threads seal them in
parallel, and the next pack is begun before the last is full), so a restore of 1 MiB
chunks from 16 MiB packs needs a few requests per pack instead of one per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from recoveryd.repo.manifest import ChunkRef
from recoveryd.repo.packs import Location

MiB = 1024 * 1024
MAX_GAP = 1 * MiB
MAX_REQUEST = 16 * MiB


@dataclass(frozen=True)
class Merge:
    """How far runs may stretch (bytes of the pack, plaintext bytes of the run)."""

    max_gap: int = MAX_GAP
    max_request: int = MAX_REQUEST
    max_plain: int = MAX_REQUEST


NO_MERGE = Merge(max_gap=0, max_request=0, max_plain=0)  # one chunk per request


@dataclass(frozen=True)
class Request:
    """One ranged read: bytes `start` to `end` of pack `pack`."""

    pack: str
    start: int
    end: int


@dataclass(frozen=True)
class Run:
    """Consecutive chunks of the stream, read by one worker: `refs` in stream order, each
    at its location in `locs` (None: read on its own, a loose chunk or one the index does
    not name) and fetched by request number `within[i]` of `requests`."""

    refs: tuple[ChunkRef, ...]
    locs: tuple[Location | None, ...]
    requests: tuple[Request, ...] = ()
    within: tuple[int | None, ...] = ()

    @property
    def plain(self) -> int:
        """Plaintext bytes of the run."""
        return sum(r.length for r in self.refs)


def plan(
    refs: Iterable[ChunkRef], locate: Callable[[str], Location | None], merge: Merge
) -> Iterator[Run]:
    """The runs that read `refs`, in order (lazily: one chunk is looked up ahead)."""
    run: list[tuple[ChunkRef, Location | None]] = []
    plain = 0
    for ref in refs:
        if run and plain + ref.length > merge.max_plain:
            yield _run(run, merge)
            run, plain = [], 0
        run.append((ref, locate(ref.id)))
        plain += ref.length
    if run:
        yield _run(run, merge)


def _run(chunks: list[tuple[ChunkRef, Location | None]], merge: Merge) -> Run:
    """The run of `chunks`, with the requests that read them."""
    located = [(loc, i) for i, (_, loc) in enumerate(chunks) if loc is not None]
    located.sort(key=lambda li: (li[0].pack, li[0].offset))
    requests: list[Request] = []
    within: list[int | None] = [None] * len(chunks)
    for loc, i in located:
        last = requests[-1] if requests else None
        end = loc.offset + loc.length
        if (
            last is not None
            and last.pack == loc.pack
            and loc.offset <= last.end + merge.max_gap
            and max(last.end, end) - last.start <= merge.max_request
        ):
            requests[-1] = Request(last.pack, last.start, max(last.end, end))
        else:
            requests.append(Request(loc.pack, loc.offset, end))
        within[i] = len(requests) - 1
    return Run(
        tuple(r for r, _ in chunks), tuple(loc for _, loc in chunks), tuple(requests), tuple(within)
    )
