"""Which fault mode a run is in: `make test-faults` sets RECOVERYD_FAULTS=all (the whole
seeded campaign); `make test` runs a few representative points of the same tests.

A plain module (no fixtures, no hypothesis profile), so tests outside tests/faults/ can
size themselves by the mode without loading the campaign's conftest."""

from __future__ import annotations

import os

FULL = os.environ.get("RECOVERYD_FAULTS") in ("all", "full")


def points(full: int, quick: int = 3) -> int:
    """How many seeded points a campaign test runs: `full` in `make test-faults`."""
    return full if FULL else quick
