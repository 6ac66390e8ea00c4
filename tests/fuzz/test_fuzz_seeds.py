"""The fuzz targets on their seed corpus and on seeded mutations of it: every input ends in
the documented error for bad input (or in success), never in another exception.

The same targets run for minutes under atheris with `make fuzz`; here each gets its seeds
and a fixed number of deterministic mutations, which is cheap enough for every test run.
"""

from __future__ import annotations

import random

import pytest

from tests.fuzz.targets import TARGETS, seeds

MUTATIONS = 150


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One libFuzzer-like mutation: flip, insert, delete, duplicate or splice bytes."""
    buf = bytearray(data or b"\n")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at:at] = bytes([rng.choice(b"{}[]:-&*!'\"\\\n #0\x00\xff")])
        elif op == 2 and buf:
            del buf[at : at + rng.randint(1, 8)]
        elif op == 3 and buf:
            piece = buf[at : at + rng.randint(1, 32)]
            buf[at:at] = piece * rng.randint(1, 4)
        else:
            buf[at:at] = rng.choice([b"*a", b"&a ", b"!!binary ", b"[" * 64, b"1e999", b"-"])
    return bytes(buf)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seed_corpus_and_mutations_end_in_documented_errors(name: str) -> None:
    """Seeds and 150 seeded mutations of them: no exception escapes the target."""
    target = TARGETS[name]
    corpus = seeds(name)
    assert corpus, f"tests/fuzz/seeds/{name} is empty"
    rng = random.Random(f"recoveryd-{name}")
    for data in corpus:
        target(data)
    for _ in range(MUTATIONS):
        target(mutate(rng.choice(corpus), rng))
