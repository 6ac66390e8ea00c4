"""The state directory's filesystem full: a real tmpfs with a size limit (the tests run as
root, so they mount it) holding `state_dir`, filled to a seeded number of free bytes.

What must hold at every fill level: `backup` and `snapshots` either work or stop with
one line naming the state directory and the fix (no traceback, no bare SQLite error);
every listed snapshot verifies; once space is freed, the next backup succeeds.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment, fs_target
from tests.faults.conftest import Tally, points
from tests.forkcli import run_recoveryd

pytestmark = pytest.mark.integration


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[Deployment]:
    """A deployment whose state directory is a 1 MiB tmpfs."""
    d = tmp_path / "deploy"
    state = d / "state"
    state.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs", str(state)], check=True
    )
    try:
        src = tmp_path / "files"
        src.mkdir()
        (src / "a.bin").write_bytes(random.Random(1).randbytes(300_000))
        yield Deployment(d).configure(
            targets={"local": fs_target(tmp_path / "store")},
            sources={"files": {"kind": "directory", "path": str(src), "targets": ["local"]}},
        )
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(directory: Path, leave: int) -> Path:
    """Fill the filesystem of `directory` until only about `leave` bytes are free."""
    filler = directory / "filler"
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    with filler.open("ab") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
            f.flush()
        except OSError:
            pass
    return filler


def _cli(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """`recoveryd ARGS` as a child process (forked from the session's interpreter)."""
    return run_recoveryd(["--config", str(dep.config), *args], timeout=300)


@pytest.mark.parametrize("seed", range(points(20, 3)))
def test_a_full_state_disk_fails_clearly_and_recovers(
    small_state: Deployment, seed: int, campaign: Tally
) -> None:
    """A backup (after one that worked) with the state filesystem nearly full: it works or
    says in one line that the state directory is full; after freeing space it works."""
    dep = small_state
    dep.cli("backup").expect(0)
    leave = random.Random(seed).choice([0, 512, 4096, 8192, 16384, 32768, 65536])
    filler = _fill(dep.state_dir, leave)
    campaign.add("fault:disk_full")
    for args in (("backup",), ("snapshots",)):
        done = _cli(dep, *args)
        assert "Traceback" not in done.stderr, done.stderr
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert f"state directory {dep.state_dir}" in lines[0], done.stderr
            assert "free space" in lines[0]
    filler.unlink()
    listed = dep.snapshots()
    assert listed
    dep.cli("verify", "--read-data").expect(0)
    dep.cli("backup").expect(0)
