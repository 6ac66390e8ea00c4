"""Which chunks of a restore are read with one request: runs of chunks, consecutive in the
stream, that lie next to each other in one pack (gaps of at most `max_gap` bytes, whose
bytes are read and dropped), at most `max_request` bytes per request and `max_plain`
plaintext bytes per run. Pure planning: the reading is `chunkstore.Chunks.read_run`.

A backup appends a stream's chunks to its packs in order, so a restore of 1 MiB chunks
from 16 MiB packs needs a few requests per pack instead of one per chunk.
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
class Run:
    """Chunks read together: `refs` in stream order, each at its location in `locs` (all
    in one pack, between `start` and `end`); `locs` is None for a chunk read on its own
    (a loose chunk, or one the index does not name)."""

    refs: tuple[ChunkRef, ...]
    locs: tuple[Location, ...] | None = None

    @property
    def plain(self) -> int:
        """Plaintext bytes of the run."""
        return sum(r.length for r in self.refs)

    @property
    def start(self) -> int:
        return min(loc.offset for loc in self.locs) if self.locs else 0

    @property
    def end(self) -> int:
        return max(loc.offset + loc.length for loc in self.locs) if self.locs else 0


@dataclass
class _Open:
    """The run being planned: its chunks, and the pack bytes and plaintext it spans."""

    pack: str
    start: int
    end: int
    plain: int
    items: list[tuple[ChunkRef, Location]]

    @classmethod
    def of(cls, ref: ChunkRef, loc: Location) -> _Open:
        return cls(loc.pack, loc.offset, loc.offset + loc.length, ref.length, [(ref, loc)])

    def take(self, ref: ChunkRef, loc: Location, m: Merge) -> bool:
        """Add chunk `ref` at `loc` when it can be read in the same request: same pack,
        not before the run's first byte, at most `max_gap` after its last, the request
        and the plaintext within their bounds."""
        end = max(self.end, loc.offset + loc.length)
        if not (
            loc.pack == self.pack
            and self.start <= loc.offset <= self.end + m.max_gap
            and end - self.start <= m.max_request
            and self.plain + ref.length <= m.max_plain
        ):
            return False
        self.end, self.plain = end, self.plain + ref.length
        self.items.append((ref, loc))
        return True

    def run(self) -> Run:
        return Run(tuple(r for r, _ in self.items), tuple(loc for _, loc in self.items))


def plan(
    refs: Iterable[ChunkRef], locate: Callable[[str], Location | None], merge: Merge
) -> Iterator[Run]:
    """The runs that read `refs`, in order (lazily: one chunk is looked up ahead)."""
    run: _Open | None = None
    for ref in refs:
        loc = locate(ref.id)
        if run is not None and loc is not None and run.take(ref, loc, merge):
            continue
        if run is not None:
            yield run.run()
            run = None
        if loc is None:
            yield Run((ref,))
        else:
            run = _Open.of(ref, loc)
    if run is not None:
        yield run.run()
