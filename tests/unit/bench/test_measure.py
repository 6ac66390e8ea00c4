"""bench/measure.py: one measured command of a benchmark (a real subprocess, no benchmark)."""

from __future__ import annotations

import pytest
from bench.measure import CommandFailedError, Servers, measured

NO_SERVERS = Servers(database=(), store=())


def test_a_pipeline_is_measured_and_its_output_returned() -> None:
    """A shell string runs as a pipeline; its stdout comes back with every measurement."""
    got, out = measured("printf 'a\\nb\\n' | sort -r", NO_SERVERS)
    assert out == "b\na\n"
    assert set(got) == {"wall_s", "cpu_s", "peak_rss_mib", "db_cpu_s", "store_cpu_s", "loadavg_1m"}
    assert got["db_cpu_s"] == 0 and got["store_cpu_s"] == 0


def test_a_failing_stage_of_a_pipeline_fails_the_command() -> None:
    """A pipeline fails when any stage fails (pipefail), with the exit status and stderr."""
    with pytest.raises(CommandFailedError, match=r"exited 3: boom"):
        measured("(echo boom >&2; exit 3) | cat", NO_SERVERS)
