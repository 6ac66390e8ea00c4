"""Measurement (not a pass/fail target): how much of a PostgreSQL dump is new after
typical registry changes, per dump format and chunk size.

It takes a minute and a half, so it runs only when asked:
`RECOVERYD_MEASURE=1 pytest -s tests/integration/sources/test_pg_dedup.py` prints the
table whose numbers back the format choice documented in `sources/postgresql.py`.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator

import pytest
from pyfastcdc import FastCDC

from recoveryd.sources.local import LocalRunner
from recoveryd.sources.postgresql import PostgresSource
from tests.fixtures.postgres import (
    PgServer,
    populate_registry,
    update_registry,
    update_registry_ids,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RECOVERYD_MEASURE"), reason="a measurement; opt in"),
]

ROWS = 100_000
CHUNKINGS = {
    "1MiB": (256 * 1024, 1024 * 1024, 4 * 1024 * 1024),  # the repository's default
    "64KiB": (16 * 1024, 64 * 1024, 256 * 1024),
}


def _chunks(data: bytes, params: tuple[int, int, int]) -> Iterator[tuple[str, int]]:
    lo, avg, hi = params
    for chunk in FastCDC(avg, min_size=lo, max_size=hi).cut_buf(data):
        yield hashlib.sha256(chunk.data).hexdigest(), chunk.length


def _new_share(before: bytes, after: bytes, params: tuple[int, int, int]) -> float:
    seen = {digest for digest, _ in _chunks(before, params)}
    new = sum(size for digest, size in _chunks(after, params) if digest not in seen)
    return new / len(after)


def _dump(pg_server: PgServer, db: str, fmt: str) -> bytes:
    src = PostgresSource(
        "population", pg_server.dsn(db), runner=LocalRunner(), password=pg_server.password
    )
    if fmt == "custom -Z0":
        reader = src.snapshot()
        out = bytearray()
        while block := reader.read(1 << 20):
            out += block
        reader.finish()
        return bytes(out)
    args = {"custom (default compression)": ["-Fc"], "plain": ["-Fp"]}[fmt]
    runner = LocalRunner()
    status, out, err = runner.run(
        [src._tool("pg_dump"), *args, "--dbname", pg_server.admin_dsn(db)], timeout=600
    )
    assert status == 0, err
    return out


def _append_and_update_range(dsn: str) -> None:
    populate_registry(dsn, ROWS // 100, seed=1)
    update_registry(dsn, ROWS // 2, ROWS // 100)


def _update_at_random(dsn: str) -> None:
    update_registry_ids(dsn, random.Random(7).sample(range(1, ROWS + 1), ROWS // 100))


def test_measure_dump_change_after_one_percent_updates(pg_server: PgServer) -> None:
    """Prints, for each format and chunk size, the share of the second dump's bytes in
    chunks absent from the first, after (a) appending 1% rows and updating 1% in one
    contiguous id range, and (b) updating 1% of rows chosen at random. No assertion:
    this is a measurement."""
    started = time.monotonic()
    scenarios: dict[str, Callable[[str], None]] = {
        "1% appended + 1% updated (contiguous ids)": _append_and_update_range,
        "1% updated at random": _update_at_random,
    }
    formats = ["custom -Z0", "custom (default compression)", "plain"]
    lines = []
    for scenario, change in scenarios.items():
        db = pg_server.create_database("dedup_" + hashlib.md5(scenario.encode()).hexdigest()[:8])  # noqa: S324
        dsn = pg_server.dsn(db, with_password=True)
        populate_registry(dsn, ROWS)
        before = {fmt: _dump(pg_server, db, fmt) for fmt in formats}
        change(dsn)
        after = {fmt: _dump(pg_server, db, fmt) for fmt in formats}
        for fmt in formats:
            shares = ", ".join(
                f"{name} chunks: {_new_share(before[fmt], after[fmt], params):6.1%}"
                for name, params in CHUNKINGS.items()
            )
            lines.append(f"{scenario:44} {fmt:30} {len(after[fmt]) / 1e6:6.1f} MB  new: {shares}")
        pg_server.drop_database(db)
    print("\n" + "\n".join(lines) + f"\n({ROWS} citizens, {time.monotonic() - started:.0f}s)")
