"""kill -9 of `wal-push` at seeded moments never loses an acknowledged WAL file and
never leaves a damaged one: each killed push left the file either absent or whole,
and pushing it again succeeds."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment, fs_target

pytestmark = pytest.mark.slow

POINTS = 12
SEGMENTS = [f"0000000100000000000000{n:02X}" for n in range(1, POINTS + 1)]


def _segment(seed: int) -> bytes:
    rnd = random.Random(seed)
    return rnd.randbytes(4 << 20) + bytes(12 << 20)


def test_wal_push_killed_at_seeded_moments_leaves_whole_files_or_none(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A push killed with SIGKILL at any of 12 seeded fractions of its run time: `wal-get`
    then returns the file byte for byte or says it is not archived (exit 1), never
    exit 3 (damaged); a second push exits 0; every acknowledged push reads back whole."""
    d = deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "registry": {
                "kind": "postgresql",
                "dsn": "host=127.0.0.1 dbname=registry",
                "targets": ["local"],
            }
        },
    )
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    for n, name in enumerate(SEGMENTS):
        (pg_wal / name).write_bytes(_segment(n))

    started = time.monotonic()
    whole = d.spawn("wal-push", "registry", str(pg_wal / SEGMENTS[0]))
    assert whole.wait() == 0, whole.stderr.read() if whole.stderr else ""
    duration = time.monotonic() - started
    rnd = random.Random(20261203)
    outcomes = {"absent": 0, "whole": 0}
    for n, name in enumerate(SEGMENTS[1:], start=1):
        proc = d.spawn("wal-push", "registry", str(pg_wal / name))
        deadline = time.monotonic() + rnd.uniform(0.2, 1.0) * duration
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        fetched = tmp_path / f"fetched-{n}"
        got = d.cli("wal-get", "registry", name, str(fetched))
        assert got.code in (0, 1), got.err
        if got.code == 0:
            assert fetched.read_bytes() == _segment(n)
            outcomes["whole"] += 1
        else:
            assert not fetched.exists()
            outcomes["absent"] += 1
        d.cli("wal-push", "registry", str(pg_wal / name)).expect(0)
        d.cli("wal-get", "registry", name, str(fetched)).expect(0)
        assert fetched.read_bytes() == _segment(n)
    assert sum(outcomes.values()) == POINTS - 1
