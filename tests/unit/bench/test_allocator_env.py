"""The benchmarks run recoveryd with the allocator settings the systemd unit gives the
daemon, so that what they measure is what runs in production."""

from __future__ import annotations

import re
from pathlib import Path

from bench import cpu, peers

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "recoveryd.service"


def _unit_malloc() -> dict[str, str]:
    pairs = re.findall(r"^Environment=(MALLOC_\w+)=(\S+)$", UNIT.read_text(), re.M)
    return dict(pairs)


def test_the_unit_bounds_the_malloc_arenas() -> None:
    """The daemon runs with one malloc arena for all threads, and with no fixed mmap
    threshold (which returned every freed chunk and pack buffer to the kernel, to be
    faulted in again)."""
    env = _unit_malloc()
    assert env.get("MALLOC_ARENA_MAX") == "1"
    assert "MALLOC_MMAP_THRESHOLD_" not in env


def test_the_benchmarks_use_the_units_allocator_settings() -> None:
    """bench/compare.py, bench/rss.py (through `peers.RECOVERYD_ENV`) and bench/cpu.py set
    exactly the unit's MALLOC_* variables."""
    assert _unit_malloc() == peers.RECOVERYD_ENV
    assert _unit_malloc() == cpu.MALLOC
