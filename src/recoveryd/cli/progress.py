"""Progress of long work: a bar on a terminal, periodic structured lines otherwise.

`Reporter(operation)` is a context manager whose `callback` is a
`flow.ProgressCallback`. Both forms show the same figures: bytes done, the
total when it is known (a restore's or copy's snapshot size, the chunks a
verify reads, a SQLite database's size, an estimate of a directory's tar
stream), the percentage, the rate and the time left. Sizes are binary
(KiB, MiB, GiB: powers of 1024, labelled so).

On a terminal (stderr is a TTY) the bar is one line on stderr, redrawn at most
every `redraw` seconds and cleared at the end. Otherwise a JSON line goes to
stderr at most every `interval` seconds, plus a last one (`"final": true`) at
the end, so that logs of unattended runs show the work advancing:
`{"event": "progress", "operation", "final", "read_bytes", "stored_bytes",
"total_bytes", "percent", "rate_bytes_per_second", "eta_seconds",
"elapsed_seconds", "chunks", "new_chunks"}` (unknown values are null). With
`--json` (`quiet`) nothing is written: stdout carries the one document.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from recoveryd.cli import output
from recoveryd.flow import Progress
from recoveryd.units import format_duration, format_size

_BAR_WIDTH = 24
INTERVAL = 10.0
"""Seconds between two JSON progress lines of unattended runs."""


@dataclass(frozen=True)
class Figures:
    """What one progress update says, for the bar and the JSON line alike."""

    read_bytes: int
    stored_bytes: int
    total_bytes: int | None
    elapsed: float
    chunks: int
    new_chunks: int

    @property
    def fraction(self) -> float | None:
        if not self.total_bytes:
            return None
        return min(1.0, self.read_bytes / self.total_bytes)

    @property
    def rate(self) -> float | None:
        """Bytes per second since the start; None before any time has passed."""
        return self.read_bytes / self.elapsed if self.elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the average rate so far; None without a total or a rate."""
        if self.total_bytes is None or not self.rate:
            return None
        return max(0.0, self.total_bytes - self.read_bytes) / self.rate

    def to_json(self) -> dict[str, Any]:
        fraction, rate, eta = self.fraction, self.rate, self.eta
        return {
            "read_bytes": self.read_bytes,
            "stored_bytes": self.stored_bytes,
            "total_bytes": self.total_bytes,
            "percent": None if fraction is None else round(fraction * 100, 1),
            "rate_bytes_per_second": None if rate is None else round(rate),
            "eta_seconds": None if eta is None else round(eta, 1),
            "elapsed_seconds": round(self.elapsed, 1),
            "chunks": self.chunks,
            "new_chunks": self.new_chunks,
        }

    def render(self, operation: str) -> str:
        """One terminal line: `restore  45.0% [#####.....] 10.8 MiB / 24.0 MiB, 4.0 MiB/s,
        ETA 3s, stored 3.1 MiB`."""
        parts = [operation]
        fraction = self.fraction
        done = format_size(self.read_bytes)
        if fraction is not None and self.total_bytes is not None:
            filled = int(fraction * _BAR_WIDTH)
            bar = "#" * filled + "." * (_BAR_WIDTH - filled)
            parts.append(f"{fraction * 100:5.1f}% [{bar}] {done} / {format_size(self.total_bytes)}")
        else:
            parts.append(done)
        details = []
        if self.rate is not None:
            details.append(f"{format_size(self.rate)}/s")
        eta = self.eta
        if eta is not None and fraction != 1.0:
            details.append("ETA <1s" if eta < 1 else f"ETA {format_duration(eta)}")
        if self.stored_bytes:
            details.append(f"stored {format_size(self.stored_bytes)}")
        return "  ".join(parts) + (", " + ", ".join(details) if details else "")


class Reporter:
    """Receives Progress updates from any thread; shows them without flooding."""

    def __init__(
        self,
        operation: str,
        *,
        tty: bool | None = None,
        interval: float | None = None,
        redraw: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        quiet: bool = False,
    ) -> None:
        self.operation = operation
        self.interval = INTERVAL if interval is None else interval
        self._redraw = redraw
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._last_emit = self._start
        self._last_draw: float | None = None
        self._last: Figures | None = None
        self._quiet = quiet
        self._tty = sys.stderr.isatty() if tty is None else tty
        self._drawn = False
        self._emitted = False

    def __enter__(self) -> Reporter:
        self._start = self._last_emit = self._clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._quiet:
            return
        if self._tty:
            if self._drawn:
                output.progress_clear()
        elif self._last is not None and self._emitted:
            self._emit(self._last, final=True)

    def callback(self, progress: Progress) -> None:
        """A `flow.ProgressCallback`."""
        with self._lock:
            now = self._clock()
            figures = Figures(
                read_bytes=progress.read_bytes,
                stored_bytes=progress.stored_bytes,
                total_bytes=progress.total,
                elapsed=now - self._start,
                chunks=progress.chunks,
                new_chunks=progress.new_chunks,
            )
            self._last = figures
            if self._quiet:
                return
            if self._tty:
                finished = figures.fraction == 1.0
                if self._last_draw is None or now - self._last_draw >= self._redraw or finished:
                    self._last_draw = now
                    self._drawn = True
                    output.progress_line(figures.render(self.operation))
                return
            if now - self._last_emit < self.interval:
                return
            self._last_emit = now
        self._emit(figures, final=False)

    def _emit(self, figures: Figures, *, final: bool) -> None:
        self._emitted = True
        output.event(
            {"event": "progress", "operation": self.operation, "final": final} | figures.to_json()
        )
