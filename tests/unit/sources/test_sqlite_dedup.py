"""Measurement (not a pass/fail target): how much of a SQLite snapshot is new after
registry-like changes, with and without a secondary index on a low-cardinality column.

Opt in: `RECOVERYD_MEASURE=1 pytest -s tests/unit/sources/test_sqlite_dedup.py`.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from pyfastcdc import FastCDC

from recoveryd.sources.sqlite import SqliteSource
from tests.fixtures.postgres import registry_rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RECOVERYD_MEASURE"), reason="a measurement; opt in"),
]

ROWS = 100_000
CHUNKINGS = {
    "1MiB": (256 * 1024, 1024 * 1024, 4 * 1024 * 1024),
    "64KiB": (16 * 1024, 64 * 1024, 256 * 1024),
}


def _new_share(before: bytes, after: bytes, params: tuple[int, int, int]) -> float:
    lo, avg, hi = params
    seen = {
        hashlib.sha256(c.data).digest()
        for c in FastCDC(avg, min_size=lo, max_size=hi).cut_buf(before)
    }
    new = sum(
        c.length
        for c in FastCDC(avg, min_size=lo, max_size=hi).cut_buf(after)
        if hashlib.sha256(c.data).digest() not in seen
    )
    return new / len(after)


def _populate(conn: sqlite3.Connection, first: int, count: int) -> None:
    conn.executemany(
        "INSERT INTO citizen VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                r["id"],
                r["national_id"],
                r["family_name"],
                r["given_name"],
                r["birth_date"].isoformat(),
                r["phone"],
                r["notes"],
            )
            for r in registry_rows(first, count)
        ),
    )


def _snapshot(path: Path) -> bytes:
    reader = SqliteSource("m", path).snapshot()
    out = io.BytesIO()
    while data := reader.read(1 << 20):
        out.write(data)
    reader.finish()
    return out.getvalue()


def _append_and_update_range(conn: sqlite3.Connection) -> None:
    _populate(conn, ROWS + 1, ROWS // 100)
    conn.execute(
        "UPDATE citizen SET notes = coalesce(notes, '') || ' address change verified'"
        " WHERE id >= ? AND id < ?",
        (ROWS // 2, ROWS // 2 + ROWS // 100),
    )


def _update_at_random(conn: sqlite3.Connection) -> None:
    ids = random.Random(7).sample(range(1, ROWS + 1), ROWS // 100)
    conn.executemany(
        "UPDATE citizen SET notes = coalesce(notes, '') || ' address change verified' WHERE id = ?",
        ((i,) for i in ids),
    )


def test_measure_snapshot_change_after_one_percent_updates(tmp_path: Path) -> None:
    """Prints the share of the second snapshot's bytes in chunks absent from the first."""
    scenarios: dict[str, Callable[[sqlite3.Connection], None]] = {
        "1% appended + 1% updated (contiguous ids)": _append_and_update_range,
        "1% updated at random": _update_at_random,
    }
    lines = []
    cases = [(s, c, idx) for s, c in scenarios.items() for idx in (False, True)]
    for n, (scenario, change, name_index) in enumerate(cases):
        db = tmp_path / f"m{n}.db"
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TABLE citizen (id INTEGER PRIMARY KEY, national_id TEXT UNIQUE,"
                " family_name TEXT, given_name TEXT, birth_date TEXT, phone TEXT, notes TEXT)"
            )
            if name_index:
                conn.execute("CREATE INDEX citizen_name ON citizen (family_name, given_name)")
            _populate(conn, 1, ROWS)
        before = _snapshot(db)
        with sqlite3.connect(db) as conn:
            change(conn)
        after = _snapshot(db)
        shares = ", ".join(
            f"{name} chunks: {_new_share(before, after, p):6.1%}" for name, p in CHUNKINGS.items()
        )
        label = scenario + (" +name index" if name_index else "")
        lines.append(f"{label:56} {len(after) / 1e6:6.1f} MB  new: {shares}")
    print("\n" + "\n".join(lines))
