"""Long work shows progress: a bar on a terminal, periodic JSON lines in logs otherwise."""

from __future__ import annotations

import json

import pytest

from recoveryd.cli.progress import Reporter
from recoveryd.flow import Progress


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
    """On a terminal a progress bar (tqdm) is drawn on stderr, never on stdout."""
    with Reporter("restore", tty=True) as rep:
        rep.callback(Progress(total=2048, read_bytes=1024))
        rep.callback(Progress(total=2048, read_bytes=2048))
    out, err = capsys.readouterr()
    assert out == ""
    assert "restore" in err


def test_quiet_for_json(capsys: pytest.CaptureFixture[str]) -> None:
    """With --json nothing but the document is written."""
    clock = Clock()
    with Reporter("backup", tty=False, interval=1, clock=clock, quiet=True) as rep:
        clock.now = 5
        rep.callback(Progress(read_bytes=1))
    assert capsys.readouterr() == ("", "")
