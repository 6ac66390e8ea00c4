"""Stop conditions: checked once before the first step, then in the background.

The first condition that fails journals a `stop_condition` record (tripped),
requests the run's abort (the running step stops, at once or, when destructive,
when it ends; rollbacks follow) and ends the checking.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from recoveryd.drills.steps.base import Outcome
from recoveryd.drills.steps.dispatch import execute
from recoveryd.errors import RecoverydError

if TYPE_CHECKING:
    from recoveryd.drills.runner import DrillRunner

PROBE_TIMEOUT = 30.0


class StopMonitor:
    """Checks every stop condition in the background; the first failure aborts the run."""

    def __init__(self, runner: DrillRunner) -> None:
        self.runner = runner
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="drill-stop-conditions")
        self.interval = min(s.interval for s in runner.book.stop_conditions)

    def start(self) -> None:
        """Check every condition once before the steps start, then keep checking meanwhile."""
        self.ctx = self.runner.context(self.stop_event)
        if self._check_all(first=True):
            self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(PROBE_TIMEOUT + 5)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            if not self._check_all(first=False):
                return

    def _check_all(self, *, first: bool) -> bool:
        """True while every condition holds; on the first failure the run is aborted."""
        r = self.runner
        for cond in r.book.stop_conditions:
            start = r.clock()
            try:
                out = execute(cond, self.ctx, cond.timeout or PROBE_TIMEOUT)
            except RecoverydError as exc:
                out = Outcome("failed", "", exc.message)
            except Exception as exc:  # noqa: BLE001 - a condition that cannot be checked trips
                # escaping, it would end the background checking and leave the drill unguarded
                out = Outcome("failed", "", f"cannot check: {type(exc).__name__}: {exc}")
            if self.stop_event.is_set():
                return False
            if first:
                r.record_step("probe", "stop_condition", cond, start, out, 1)
            if not out.ok:
                detail = out.error or out.status
                r.journal.record("stop_condition", name=cond.name, status="tripped", detail=detail)
                r.request_abort("stop_condition", f'stop condition "{cond.name}" tripped: {detail}')
                return False
        return True
