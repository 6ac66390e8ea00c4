"""Stop conditions: checked once before the first step, then in the background.

The first condition that fails journals a `stop_condition` record (tripped),
requests the run's abort (the running step stops, at once or, when destructive,
when it ends; rollbacks follow) and ends the checking. Checks that hold are
counted, not journaled one by one: a `stop_condition` record with status `held`
and the count so far is journaled every `SAMPLE_EVERY` seconds and when the
checking ends, so the report can say how often each condition was watched.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from recoveryd.drill_records import StopConditionRecord
from recoveryd.drills.steps.base import Outcome
from recoveryd.drills.steps.dispatch import execute
from recoveryd.errors import RecoverydError

if TYPE_CHECKING:
    from recoveryd.drills.runner import DrillRunner

PROBE_TIMEOUT = 30.0
SAMPLE_EVERY = 60.0  # seconds between two journaled counts of the checks that held


class StopMonitor:
    """Checks every stop condition in the background; the first failure aborts the run."""

    def __init__(self, runner: DrillRunner) -> None:
        self.runner = runner
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="drill-stop-conditions")
        self.interval = min(s.interval for s in runner.book.stop_conditions)
        self.checks: dict[str, int] = {c.name: 0 for c in runner.book.stop_conditions}
        self.tripped = False
        self._sampled = time.monotonic()

    def start(self) -> None:
        """Check every condition once before the steps start, then keep checking meanwhile."""
        self.ctx = self.runner.context(self.stop_event)
        if self._check_all(first=True):
            self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(PROBE_TIMEOUT + 5)
        if not self.tripped:
            self._sample()

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            if not self._check_all(first=False):
                return
            if time.monotonic() - self._sampled >= SAMPLE_EVERY:
                self._sample()

    def _sample(self) -> None:
        """Journal how often each condition was checked and held so far."""
        self._sampled = time.monotonic()
        for name, count in self.checks.items():
            self.runner.journal.write(StopConditionRecord(name=name, status="held", checks=count))

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
            self.checks[cond.name] += 1
            if first:
                r.record_step("probe", "stop_condition", cond, start, out, 1)
            if not out.ok:
                detail = out.error or out.status
                self.tripped = True
                r.journal.write(
                    StopConditionRecord(
                        name=cond.name,
                        status="tripped",
                        detail=detail,
                        checks=self.checks[cond.name],
                    )
                )
                r.request_abort("stop_condition", f'stop condition "{cond.name}" tripped: {detail}')
                return False
        return True
