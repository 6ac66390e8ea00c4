"""Property tests of content-defined chunking and chunk compression (hypothesis).

Whatever the bytes and however the source hands them over (pipes return short
reads), the chunks concatenate back to the input, respect the size bounds, and
are the same for the same content; compression round-trips every payload.
"""

from __future__ import annotations

import io
import random

from hypothesis import given
from hypothesis import strategies as st

from recoveryd.repo import chunker
from recoveryd.repo.chunker import ChunkerParams
from tests.faults.conftest import Tally

PARAMS = ChunkerParams(min_size=64, avg_size=256, max_size=1024)


class ShortReads:
    """A reader that returns at most a seeded random number of bytes per call, like a pipe."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._buf = io.BytesIO(data)
        self._rng = random.Random(seed)

    def read(self, size: int = -1, /) -> bytes:
        limit = self._rng.randint(1, 300)
        return self._buf.read(limit if size < 0 else min(size, limit))


def _payloads() -> st.SearchStrategy[bytes]:
    """Random bytes, and repetitive ones (which compress and cut differently)."""
    repeated = st.tuples(st.binary(min_size=1, max_size=64), st.integers(1, 200)).map(
        lambda t: t[0] * t[1]
    )
    return st.one_of(st.binary(max_size=6000), repeated)


@given(data=_payloads(), seed=st.integers(0, 2**32))
def test_chunks_concatenate_to_the_input_within_bounds(
    data: bytes, seed: int, campaign: Tally
) -> None:
    """The chunks of any stream are the stream; every chunk but the last is at least
    min_size; none exceeds max_size; short reads from the source change nothing."""
    campaign.add("inputs")
    whole = list(chunker.chunks(io.BytesIO(data), PARAMS))
    assert b"".join(whole) == data
    assert all(0 < len(c) <= PARAMS.max_size for c in whole)
    assert all(len(c) >= PARAMS.min_size for c in whole[:-1])
    assert list(chunker.chunks(ShortReads(data, seed), PARAMS)) == whole


@given(data=_payloads())
def test_compression_round_trips(data: bytes, campaign: Tally) -> None:
    """compress() then decompress() returns the bytes, and is never larger than one
    marker byte over the input (incompressible chunks are stored)."""
    campaign.add("inputs")
    payload = chunker.compress(data)
    assert chunker.decompress(payload, max_size=max(len(data), 1)) == data
    assert len(payload) <= len(data) + 1
