"""Long work shows progress: a bar on a terminal, periodic JSON lines in logs otherwise."""

from __future__ import annotations

import json

import pytest

from recoveryd.cli.progress import Figures, Reporter
from recoveryd.flow import Progress, Tally

MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_unattended_runs_log_progress_at_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a terminal, a structured line at most every interval, and a final one; stdout
    stays empty for --json documents."""
    clock = Clock()
    with Reporter("backup", tty=False, interval=10, clock=clock) as rep:
        for i in range(1, 31):
            clock.now = float(i)
            rep.callback(Progress(read_bytes=i * 1000, stored_bytes=i * 300, chunks=i))
    out, err = capsys.readouterr()
    assert out == ""
    lines = [json.loads(x) for x in err.splitlines()]
    assert [x["read_bytes"] for x in lines] == [10000, 20000, 30000, 30000]
    assert [x["final"] for x in lines] == [False, False, False, True]
    assert all(x["event"] == "progress" and x["operation"] == "backup" for x in lines)


def test_short_work_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """Work shorter than one interval leaves the log alone."""
    with Reporter("verify", tty=False, interval=10, clock=Clock()) as rep:
        rep.callback(Progress(read_bytes=5))
    assert capsys.readouterr() == ("", "")


def test_terminal_gets_a_bar_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal a progress bar is drawn on stderr, never on stdout, with the percentage,
    binary units labelled as such (MiB, never "MB"), the rate and the time left; it is
    cleared at the end."""
    clock = Clock()
    with Reporter("restore", tty=True, clock=clock) as rep:
        clock.now = 2.0
        rep.callback(Progress(total=24 * MIB, read_bytes=8 * MIB))
        clock.now = 6.0
        rep.callback(Progress(total=24 * MIB, read_bytes=24 * MIB))
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        "restore   33.3% [########................] 8.0 MiB / 24.0 MiB, 4.0 MiB/s, ETA 4.0s" in err
    )
    assert "100.0%" in err
    assert "MB" not in err.replace("MiB", "")
    assert err.endswith("\r\x1b[K")


def test_bar_without_a_total_shows_bytes_rate_and_stored() -> None:
    """When the total is not known (a PostgreSQL dump), the bar shows bytes, rate and the
    bytes stored, without percent or ETA."""
    figures = Figures(
        read_bytes=3 * MIB, stored_bytes=MIB, total_bytes=None, elapsed=1.5, chunks=3, new_chunks=1
    )
    assert figures.render("backup") == "backup  3.0 MiB, 2.0 MiB/s, stored 1.0 MiB"
    assert figures.to_json()["percent"] is None
    assert figures.to_json()["eta_seconds"] is None


def test_json_lines_carry_what_the_bar_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON progress line carries total, percent, rate and ETA, like the bar."""
    clock = Clock()
    with Reporter("copy", tty=False, interval=1, clock=clock) as rep:
        clock.now = 4.0
        rep.callback(Progress(total=16 * MIB, read_bytes=4 * MIB, stored_bytes=MIB, chunks=4))
    first = json.loads(capsys.readouterr().err.splitlines()[0])
    assert first == {
        "event": "progress",
        "operation": "copy",
        "final": False,
        "read_bytes": 4 * MIB,
        "stored_bytes": MIB,
        "total_bytes": 16 * MIB,
        "percent": 25.0,
        "rate_bytes_per_second": MIB,
        "eta_seconds": 12.0,
        "elapsed_seconds": 4.0,
        "chunks": 4,
        "new_chunks": 0,
    }


def test_a_tally_adds_parts_and_planned_totals() -> None:
    """A Tally reports the sum of every part's chunks, and a total that grows as parts
    plan their work (verify across targets)."""
    seen: list[Progress] = []
    tally = Tally(seen.append)
    tally.plan(100)
    tally.add(60, stored=10, new_chunk=True)
    tally.plan(50)
    tally.add(40)
    assert [(p.read_bytes, p.total) for p in seen] == [(0, 100), (60, 100), (60, 150), (100, 150)]
    assert (seen[-1].stored_bytes, seen[-1].chunks, seen[-1].new_chunks) == (10, 2, 1)


def test_quiet_for_json(capsys: pytest.CaptureFixture[str]) -> None:
    """With --json nothing but the document is written."""
    clock = Clock()
    with Reporter("backup", tty=False, interval=1, clock=clock, quiet=True) as rep:
        clock.now = 5
        rep.callback(Progress(read_bytes=1))
    assert capsys.readouterr() == ("", "")
