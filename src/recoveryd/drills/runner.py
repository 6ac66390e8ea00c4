"""Run a validated playbook: lock, preflight, steady state, steps, stop conditions,
rollbacks, steady state again, RTO/RPO, journal.

Order of a run (docs/PLAYBOOKS.md, "A run"):
1. refuse destructive steps without `--yes` or approvals (exit 5), before anything;
2. take the lock of the drill's name (exit 5 when held);
3. `preflight` and `steady_state` probes (executed for real, also in dry-run);
4. steps, in order, each with `when`, `only_if`, `retries`/`delay`, `timeout`; the
   first failure stops the steps. `stop_conditions` are checked in a background
   thread meanwhile; one failing aborts the run (status `aborted`). The cancel
   event (SIGINT, SIGTERM, the caller) interrupts it (status `interrupted`); a
   destructive step that is running ends first (`abort.py`). A canary writes to
   the primary;
5. on failure/abort/interrupt (per `rollback_on`): the `rollback` of every
   completed step in reverse order, through its `only_if`; a step cut short only
   through its `only_if` (`rollback.py`); the automatic undo of faults always runs;
6. `steady_state` again (`steady_state_after`);
7. RTO = the outage (`drill_records.outage_window`: from `fault_start`, else from the
   start of the step marked `fault`, to `recovered`); RPO from the canary; both vs
   objectives (not judged in a dry run).
Marks are taken when their step ends and name that step and its start. Every record is
one of the typed models of `recoveryd.drill_records`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from recoveryd import drill_records as rec
from recoveryd.config import LoadedConfig
from recoveryd.drills import measures, signing
from recoveryd.drills.abort import AbortControl, Cause
from recoveryd.drills.approvals import ApprovalBox, approver_keys, current_user, operator_names
from recoveryd.drills.dryrun import dry_steps
from recoveryd.drills.finish import finish, governor_events, journal_seal, run_result, with_report
from recoveryd.drills.hosts import HostRunners
from recoveryd.drills.journal import Journal, journal_path, run_dir
from recoveryd.drills.lock import take_locks
from recoveryd.drills.models import LoadedPlaybook, Step
from recoveryd.drills.permission import await_approvals, check_permission, required_approvals
from recoveryd.drills.ports import LevelSource, SnapshotOperations
from recoveryd.drills.result import DrillResult, ReportWriter, RunStatus
from recoveryd.drills.rollback import CUT_SHORT, Guard, check_guard, run_rollbacks
from recoveryd.drills.steps import pressure
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.dispatch import execute
from recoveryd.drills.stopconditions import PROBE_TIMEOUT, StopMonitor
from recoveryd.errors import RecoverydError
from recoveryd.secrets import redact, register
from recoveryd.state import StateStore, utcnow

_SIGNALLED = "interrupted by a signal (SIGINT/SIGTERM) or the caller"
_FALSY = {"", "false", "no", "0", "none", "off"}


@dataclass
class _Done:
    """A step that completed, was cut short (possibly done) or failed after changing
    something (it left an undo), and may need undoing."""

    step: Step
    outcome: Outcome

    @property
    def cut_short(self) -> bool:
        return self.outcome.status in CUT_SHORT


@dataclass
class _RunState:
    status: RunStatus = "passed"
    reason: str | None = None  # failure | abort | interrupt
    error: str | None = None
    done: list[_Done] = field(default_factory=list)
    marks: dict[str, datetime] = field(default_factory=dict)
    mark_records: list[rec.MarkRecord] = field(default_factory=list)
    approval_missing: bool = False  # approvals did not arrive in time (exit 5)
    measures: dict[str, int] = field(default_factory=dict)


class DrillRunner:
    """One run of one playbook. Not reusable."""

    def __init__(
        self,
        loaded: LoadedPlaybook,
        cfg: LoadedConfig | None,
        *,
        state_dir: Path,
        yes: bool = False,
        dry_run: bool = False,
        cancel: threading.Event | None = None,
        force: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        listener: Callable[[dict[str, Any]], None] | None = None,
        report: ReportWriter | None = None,
        ops: SnapshotOperations | None = None,
        level: LevelSource | None = None,
        run_kind: str = "drill",
        run_source: str | None = None,
    ) -> None:
        self.run_kind = run_kind
        self.run_source = run_source
        self.loaded = loaded
        self.book = loaded.playbook
        self.cfg = cfg
        self.state_dir = state_dir
        self.yes = yes
        self.dry_run = dry_run
        self.external_cancel = cancel or threading.Event()  # a signal, or the caller
        self.external_force = force or threading.Event()  # a second signal
        self.clock = clock
        self.listener = listener
        self.report = report
        self.ops = ops
        self.level = level or (lambda: pressure.current_level(self.cfg, self.state_dir))
        self.governor_level = level  # given when the governor started this (shedding) run
        self.operator = current_user()
        self.run_id = self._new_run_id()
        register(*loaded.secrets)  # journal, state, logs and reports all mask them
        self.journal = Journal(
            journal_path(state_dir, self.run_id),
            redact,
            clock=clock,
            listener=listener,
        )
        self.runners = HostRunners(loaded.hosts, Path(loaded.base_dir))
        self.approvals = ApprovalBox(
            run_dir(state_dir, self.run_id),
            self.operator,
            self._approval,
            run_id=self.run_id,
            playbook_sha256=loaded.sha256,
            keys=approver_keys(cfg),
            operators=operator_names(),
            on_rejected=self._approval_rejected,
        )
        self.required_approvals = required_approvals(self.book, cfg)
        self.control = AbortControl(self.journal.write, clock)
        self.abort = self.control.requested  # set by the first stop condition or signal
        self.ctx = self.context(self.abort)
        self.state = _RunState()

    def request_abort(self, cause: Cause, detail: str) -> None:
        """A stop condition tripped or a signal arrived (see `abort.py`)."""
        self.control.request(cause, detail)

    # -- setup ---------------------------------------------------------------

    def _approval(self, user: str) -> None:
        key = self.approvals.keys.get(user)
        fingerprint = signing.fingerprint(key) if key is not None else None
        self.journal.write(rec.ApprovalRecord(user=user, key=fingerprint))

    def _approval_rejected(self, file: str, why: str) -> None:
        self.journal.write(
            rec.EventRecord(kind="approval_rejected", data={"file": file, "why": why})
        )

    def _new_run_id(self) -> str:
        stamp = self.clock().strftime("%Y%m%dT%H%M%SZ")
        run_id = f"{stamp}-{self.book.name}"
        n = 2
        while run_dir(self.state_dir, run_id).exists():
            run_id = f"{stamp}-{self.book.name}-{n}"
            n += 1
        return run_id

    def context(self, cancel: threading.Event) -> StepContext:
        return StepContext(
            loaded=self.loaded,
            cfg=self.cfg,
            cancel=cancel,
            runners=self.runners,
            approvals=self.approvals,
            state_dir=self.state_dir,
            pressure=self.level,
            ops=self.ops,
        )

    def check_permission(self) -> None:
        """Refused (exit 5) before anything runs without --yes or enough approvers."""
        check_permission(self)

    # -- the run ---------------------------------------------------------------

    def run(self) -> DrillResult:
        self.check_permission()
        lock = take_locks(self.state_dir, self.run_id, self.book, self.loaded.hosts)
        store = StateStore(self.state_dir)
        started = self.clock()
        db_run = store.start_run(
            self.run_kind,
            source=self.run_source or self.book.name,
            details={"run_id": self.run_id, "dry_run": self.dry_run},
        )
        watcher = threading.Thread(target=self._watch_cancel, daemon=True)
        watcher.start()
        try:
            self._started()
            rto, rpo = self._body()
        finally:
            self._finished_watch = True
            self.runners.close()
            for held in reversed(lock):
                held.release()
        governor_events(self, store, started)
        result = finish(self, rto, rpo)
        store.end_run(
            db_run,
            run_result(result),
            error=result.error,
            details={
                "run_id": self.run_id,
                "status": result.status,
                "rto_seconds": rto,
                "rpo_seconds": rpo,
                "objectives_met": result.objectives_met,
                "dry_run": self.dry_run,
                **journal_seal(self),
            },
        )
        return with_report(self, result)

    _finished_watch = False

    def _watch_cancel(self) -> None:
        while not self._finished_watch:
            if self.external_cancel.wait(0.1):
                self.request_abort(
                    "signal", "interrupted by a signal (SIGINT/SIGTERM) or the caller"
                )
                break
        while not self._finished_watch:
            if self.external_force.wait(0.1):
                self.control.force()
                return

    def _started(self) -> None:
        book = self.book
        self.journal.write(
            rec.RunStarted(
                run_id=self.run_id,
                playbook=rec.PlaybookRef(
                    name=book.name,
                    description=book.description,
                    path=self.loaded.path,
                    sha256=self.loaded.sha256,
                ),
                operator=self.operator,
                dry_run=self.dry_run,
                objectives=rec.ObjectivesRef(rto_s=book.objectives.rto, rpo_s=book.objectives.rpo),
                owners=rec.OwnersRef(government=book.owners.government, vendor=book.owners.vendor),
                sources=book.sources,
                warnings=list(self.loaded.warnings),
            )
        )

    def _phase(self, phase: str, status: str) -> None:
        self.journal.write(rec.PhaseRecord(phase=phase, status=status))

    def _body(self) -> tuple[float | None, float | None]:
        if not self._probe_phase("preflight", self.book.preflight):
            return None, None
        if not self._probe_phase("steady_state", self.book.steady_state):
            return None, None
        if self.dry_run:
            dry_steps(self)
            return None, None
        canary = measures.start_canary(self)
        monitor = StopMonitor(self) if self.book.stop_conditions else None
        if monitor is not None:
            monitor.start()
        try:
            self._steps()
        except KeyboardInterrupt:
            # SIGINT outside the CLI (which turns signals into the cancel event): it cannot
            # be deferred, the step was stopped where it was
            self.request_abort("signal", "interrupted by SIGINT (KeyboardInterrupt)")
        except Exception as exc:  # noqa: BLE001 - whatever broke, what was done gets undone
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f"unexpected {type(exc).__name__}: {exc}"
            self._phase("steps", "failed")
        finally:
            if monitor is not None:
                monitor.stop()
            if canary is not None:
                canary.stop()
        self._settle_status()
        reason = self.state.reason if self.state.status != "passed" else None
        roll = reason is not None and reason in self.book.rollback_on
        run_rollbacks(self, self.state.done, roll)
        self._probe_phase("steady_state_after", self.book.steady_state)
        return measures.rto(self), measures.rpo(self, canary)

    def _settle_status(self) -> None:
        """An abort decides the status (`aborted` by a stop condition, `interrupted` by a
        signal), whatever the step it stopped reported; a failure that came first stays."""
        cause = self.control.cause
        if cause is None or self.state.reason == "failure":
            return
        self.state.status = "interrupted" if cause == "signal" else "aborted"
        self.state.reason = "interrupt" if cause == "signal" else "abort"
        detail = self.control.detail or cause
        during = self.control.during
        if during is not None:
            deferred = " (deferred until it ended)" if self.control.deferred else ""
            detail += f', during "{during}"{deferred}'
        self.state.error = detail

    # -- probes ---------------------------------------------------------------

    def _probe_phase(self, phase: str, probes: list[Step]) -> bool:
        if not probes:
            return True  # nothing checked: `steady_state_restored` stays None (not known)
        self._phase(phase, "started")
        ctx = self.context(threading.Event()) if phase == "steady_state_after" else self.ctx
        ok = True
        problem = ""
        for probe in probes:
            outcome = self.attempts(probe, ctx, "probe", phase)
            if not outcome.ok:
                ok = False
                problem = problem or f'"{probe.name}" {outcome.status}: {outcome.error}'
                if phase != "steady_state_after":
                    break
        self._phase(phase, "passed" if ok else "failed")
        if phase == "steady_state_after":
            self.steady_after = ok
        elif not ok:
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f"{phase} failed: {problem}"
        return ok

    steady_after: bool | None = None

    # -- steps ----------------------------------------------------------------

    def _steps(self) -> None:
        self._phase("steps", "started")
        approved = self.required_approvals == 0
        for step in self.book.steps:
            if self.abort.is_set():
                break
            if not self.when(step):
                now = self.clock()
                self.record_step("step", "steps", step, now, Outcome("skipped", "when is false"), 0)
                continue
            if step.is_destructive and not approved:
                if not await_approvals(self):
                    break
                approved = True
            if not self._run_step(step):
                break
        if self.abort.is_set() and self.state.status == "passed":
            self.state.status = "aborted"
            self.state.reason = self.state.reason or "abort"
        self._phase("steps", "passed" if self.state.status == "passed" else "failed")

    def _run_step(self, step: Step) -> bool:
        """Guard, then the step under the abort control; False when the steps must stop."""
        guard = None
        if step.only_if is not None:
            cancel = self.control.begin(f"only_if of {step.name}", deferrable=False)
            if cancel is None:
                return False
            try:
                guard = check_guard(
                    self, step.only_if, dataclasses.replace(self.ctx, cancel=cancel)
                )
            finally:
                self.control.end()
            if self.abort.is_set():
                return False  # the guard was cut short: neither held nor not
            if not guard.held:
                self.record_step("step", "steps", step, self.clock(), guard.skipped(), 0, guard)
                return True
        cancel = self.control.begin(step.name, deferrable=step.defers_abort)
        if cancel is None:
            return False
        self.journal.write(
            rec.StepStarted(phase="steps", name=step.name, destructive=step.is_destructive)
        )
        start = end = self.clock()
        try:
            outcome = self.attempt(step, dataclasses.replace(self.ctx, cancel=cancel), "step")
            end = self.clock()
        finally:
            self.control.end()  # a deferred abort takes effect: journaled before the step
        self.record_step("step", "steps", step, start, outcome, outcome.attempts, guard, end)
        if outcome.ok or outcome.undo is not None or outcome.status in CUT_SHORT:
            self.state.done.append(_Done(step, outcome))
        if not outcome.ok:
            self._step_failed(step, outcome)
            return False
        measures.keep_measure(self, step, outcome)
        measures.take_mark(self, step, start)
        return True

    def _step_failed(self, step: Step, outcome: Outcome) -> None:
        if outcome.status == "aborted" or self.abort.is_set():
            self.state.status = "aborted"  # `_settle_status` says by what
            self.state.reason = self.state.reason or "abort"
        else:
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f'step "{step.name}" {outcome.status}: {outcome.error}'

    def when(self, step: Step) -> bool:
        if step.when is None:
            return True
        if isinstance(step.when, bool):
            return step.when
        return step.when.strip().lower() not in _FALSY

    def attempt(self, step: Step, ctx: StepContext, type_: str) -> Outcome:
        """One execution with its retries and delay; not journaled. Retries stop when the
        step's cancel is set, or when an abort is pending for a step (a deferred one ends
        with the attempt under way)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                outcome = execute(step, ctx, step.timeout or _default_timeout(step, type_))
            except RecoverydError as exc:
                outcome = Outcome("failed", "", exc.message)
            except Exception as exc:  # noqa: BLE001 - a failed step, journaled; the rest is undone
                outcome = Outcome("failed", "", f"unexpected {type(exc).__name__}: {exc}")
            stop = ctx.cancel.is_set() or (type_ == "step" and self.abort.is_set())
            if outcome.ok or attempts > step.retries or stop:
                return dataclasses.replace(outcome, attempts=attempts)
            if outcome.undo is not None:
                outcome.undo()
            if ctx.cancel.wait(step.delay):
                return dataclasses.replace(outcome, attempts=attempts)

    def attempts(
        self, step: Step, ctx: StepContext, type_: str, phase: str, *, guard: Guard | None = None
    ) -> Outcome:
        """`attempt`, journaled."""
        start = self.clock()
        outcome = self.attempt(step, ctx, type_)
        self.record_step(type_, phase, step, start, outcome, outcome.attempts, guard)
        return outcome

    def record_step(
        self,
        type_: str,
        phase: str,
        step: Step,
        start: datetime,
        out: Outcome,
        attempts: int,
        guard: Guard | None = None,
        end: datetime | None = None,
    ) -> None:
        self.journal.write(
            rec.StepRecord(
                type=_step_type(type_),
                phase=phase,
                name=step.name,
                kind=step.kind,
                start=start,
                end=end or self.clock(),
                status=out.status,
                attempts=attempts,
                destructive=step.is_destructive,
                output=out.output,
                error=out.error,
                guard=None if guard is None else guard.to_record(),
            )
        )


def _step_type(type_: str) -> Literal["step", "probe", "rollback"]:
    if type_ == "probe":
        return "probe"
    return "rollback" if type_ == "rollback" else "step"


def _default_timeout(step: Step, type_: str) -> float | None:
    if type_ == "probe" and step.kind != "wait":
        return PROBE_TIMEOUT
    return None
