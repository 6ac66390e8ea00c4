"""Progress of long work: a bar on a terminal, periodic structured lines otherwise.

`reporter(what)` returns a context manager whose `callback` is a
`flow.ProgressCallback`. On a terminal (stderr is a TTY) it drives a tqdm bar
on stderr; otherwise it writes a JSON line on stderr at most every `interval`
seconds (`{"event": "progress", "operation": ..., "read_bytes": ...}`), plus a
last one at the end, so that logs of unattended runs show the work advancing.
stdout stays free for `--json` documents.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from recoveryd.cli import output
from recoveryd.flow import Progress


class Reporter:
    """Receives Progress updates from any thread; shows them without flooding."""

    def __init__(
        self,
        operation: str,
        *,
        tty: bool | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        quiet: bool = False,
    ) -> None:
        self.operation = operation
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_emit = clock()
        self._last: Progress | None = None
        self._quiet = quiet
        self._tty = sys.stderr.isatty() if tty is None else tty
        self._bar: Any = None
        self._emitted = False

    def __enter__(self) -> Reporter:
        if self._tty and not self._quiet:
            from tqdm import tqdm

            self._bar = tqdm(
                desc=self.operation,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._last is not None and self._emitted and not self._quiet:
            self._emit(self._last, final=True)

    def callback(self, progress: Progress) -> None:
        """A `flow.ProgressCallback`."""
        with self._lock:
            self._last = progress
            if self._bar is not None:
                if progress.total is not None and self._bar.total != progress.total:
                    self._bar.total = progress.total
                self._bar.n = progress.read_bytes
                self._bar.set_postfix(stored=_mib(progress.stored_bytes), refresh=False)
                self._bar.refresh()
                return
            now = self._clock()
            if now - self._last_emit < self.interval:
                return
            self._last_emit = now
        if not self._quiet:
            self._emit(progress, final=False)

    def _emit(self, p: Progress, *, final: bool) -> None:
        self._emitted = True
        output.event(
            {
                "event": "progress",
                "operation": self.operation,
                "final": final,
                "read_bytes": p.read_bytes,
                "stored_bytes": p.stored_bytes,
                "total_bytes": p.total,
                "chunks": p.chunks,
                "new_chunks": p.new_chunks,
            }
        )


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f}MiB"
