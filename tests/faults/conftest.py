"""The fault campaign's shared pieces: its size, its seeds and its tally.

`make test` runs every campaign test with a few points each (the fast subset);
`make test-faults` sets RECOVERYD_FAULTS=all and runs the whole seeded campaign
(at least 20 kill points per command, hundreds of injected faults, thousands of
property-test inputs). Every random choice comes from a seeded `random.Random`,
so a failing point is reproduced by its seed alone.

The `campaign` fixture counts what a run did (points killed, faults injected,
inputs tried); the totals are printed at the end of the pytest run and written
to `$RECOVERYD_FAULTS_TALLY` when that variable names a file (docs/RELIABILITY.md
records the figures of a full run).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.faultmode import FULL, points

__all__ = ["FULL", "Tally", "campaign", "points"]

settings.register_profile(
    "campaign",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "quick",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("campaign" if FULL else "quick")


class Tally:
    """What the campaign did, by kind (thread-safe: proxies count from their own threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] += n


_TALLY = Tally()


@pytest.fixture(scope="session")
def campaign() -> Iterator[Tally]:
    """The session's tally: `campaign.add("killed")`, `add("fault:reset")`, `add("inputs")`."""
    yield _TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TALLY.counts:
        return
    kills = sum(n for k, n in _TALLY.counts.items() if k.startswith("killed"))
    faults = sum(n for k, n in _TALLY.counts.items() if k.startswith("fault"))
    inputs = _TALLY.counts.get("inputs", 0)
    terminalreporter.section("fault campaign")
    terminalreporter.write_line(
        f"mode {'full' if FULL else 'quick'}: {kills} points killed, "
        f"{faults} faults injected, {inputs} inputs tried"
    )
    for kind, n in sorted(_TALLY.counts.items()):
        terminalreporter.write_line(f"  {kind}: {n}")
    out = os.environ.get("RECOVERYD_FAULTS_TALLY")
    if out:
        Path(out).write_text(json.dumps(dict(sorted(_TALLY.counts.items())), indent=2) + "\n")
