"""Run a validated playbook: lock, preflight, steady state, steps, stop conditions,
rollbacks, steady state again, RTO/RPO, journal.

Order of a run (SPEC §4):
1. refuse destructive steps without `--yes` or approvals (exit 5), before anything;
2. take the lock of the drill's name (exit 5 when held);
3. `preflight` and `steady_state` probes (executed for real, also in dry-run);
4. steps, in order, each with `when`, `retries`/`delay`, `timeout`; the first
   failure stops the steps. `stop_conditions` are checked in a background
   thread meanwhile; one failing aborts the run. The cancel event (SIGINT,
   SIGTERM, the caller) interrupts it. A canary writes to the primary;
5. on failure/abort/interrupt (per `rollback_on`): the `rollback` of every
   completed step in reverse order; the automatic undo of faults always runs;
6. `steady_state` again (`steady_state_after`);
7. RTO = `recovered` - `fault` mark; RPO from the canary; both vs objectives.
Marks are taken when their step ends: `fault` when the fault is in effect,
`recovered` when the service was seen back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from recoveryd.config import LoadedConfig
from recoveryd.drills.approvals import ApprovalBox, current_user
from recoveryd.drills.canary import CanaryWriter, rpo_seconds
from recoveryd.drills.hosts import HostRunners
from recoveryd.drills.journal import Journal, journal_path, run_dir
from recoveryd.drills.lock import DrillLock
from recoveryd.drills.models import LoadedPlaybook, Playbook, Step
from recoveryd.drills.result import DrillResult, ReportWriter, RunStatus
from recoveryd.drills.steps import pressure
from recoveryd.drills.steps.base import Outcome, Status, StepContext
from recoveryd.drills.steps.dispatch import describe, execute
from recoveryd.drills.stopconditions import PROBE_TIMEOUT, StopMonitor
from recoveryd.errors import RecoverydError, RefusedError
from recoveryd.secrets import redact, register
from recoveryd.state import StateStore, iso, utcnow

_FIRST_NUMBER = re.compile(r"\d+")
_FALSY = {"", "false", "no", "0", "none", "off"}
GOVERNOR_EVENTS = ("level_change", "deferred", "paused", "resumed", "shed_action", "rpo_override")


@dataclass
class _Done:
    """A step that completed (or failed after changing something) and may need undoing."""

    step: Step
    outcome: Outcome


@dataclass
class _RunState:
    status: RunStatus = "passed"
    reason: str | None = None  # failure | abort | interrupt
    error: str | None = None
    done: list[_Done] = field(default_factory=list)
    marks: dict[str, datetime] = field(default_factory=dict)
    measures: dict[str, int] = field(default_factory=dict)
    tripped: threading.Event = field(default_factory=threading.Event)


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
        clock: Callable[[], datetime] = utcnow,
        listener: Callable[[dict[str, Any]], None] | None = None,
        report: ReportWriter | None = None,
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
        self.external_cancel = cancel or threading.Event()
        self.abort = threading.Event()  # set by stop conditions or the external cancel
        self.clock = clock
        self.listener = listener
        self.report = report
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
        )
        self.ctx = self.context(self.abort)
        self.state = _RunState()

    # -- setup ---------------------------------------------------------------

    def _approval(self, user: str) -> None:
        self.journal.record("approval", user=user)

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
            pressure=lambda: pressure.current_level(self.cfg, self.state_dir),
        )

    def check_permission(self) -> None:
        """Destructive steps need --yes or approvals; refused (exit 5) before anything runs."""
        if self.dry_run or self.yes or self.book.approvals.required > 0:
            return
        destructive = [s.name for s in self.book.steps if s.is_destructive]
        if destructive:
            raise RefusedError(
                f'drill {self.book.name}: step "{destructive[0]}" is destructive; rerun with '
                "--yes, or require approvals in the playbook"
            )

    # -- the run ---------------------------------------------------------------

    def run(self) -> DrillResult:
        self.check_permission()
        lock = self._lock()
        store = StateStore(self.state_dir)
        started = self.clock()
        db_run = store.start_run(self.run_kind, source=self.run_source or self.book.name)
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
        self._governor_events(store, started)
        result = self._finish(rto, rpo)
        store.end_run(
            db_run,
            "ok" if result.status == "passed" and result.objectives_met else "failed",
            error=result.error,
            details={
                "run_id": self.run_id,
                "status": result.status,
                "rto_seconds": rto,
                "rpo_seconds": rpo,
                "objectives_met": result.objectives_met,
                "dry_run": self.dry_run,
                # kept apart from the journal, so that `drill list --verify` and the report
                # notice records removed from its end or a journal rewritten whole
                **self._journal_seal(),
            },
        )
        return self._with_report(result)

    _finished_watch = False

    def _lock(self) -> list[DrillLock]:
        """One drill per target system: the drill's own name, and every host its steps reach
        over SSH (so two different playbooks cannot fail over the same server at once)."""
        names = [self.book.name]
        for host in sorted(_referenced_hosts(self.book)):
            spec = self.loaded.hosts.get(host)
            if spec is not None:
                names.append(f"host-{spec.address}-{spec.port}".replace("/", "_"))
        held: list[DrillLock] = []
        try:
            for name in dict.fromkeys(names):
                lock = DrillLock(self.state_dir, name)
                lock.acquire(self.run_id)
                held.append(lock)
        except BaseException:
            for lock in reversed(held):
                lock.release()
            raise
        return held

    def _journal_seal(self) -> dict[str, Any]:
        last = self.journal.last
        if last is None:
            return {}
        return {"journal_head": last["hash"], "journal_records": int(last["seq"]) + 1}

    def _governor_events(self, store: StateStore, since: datetime) -> None:
        """Shedding events that happened during the run, for the report's timeline."""
        try:
            events = store.events(since=since, kinds=GOVERNOR_EVENTS)
        except Exception:  # noqa: BLE001 - the journal must be finished even so
            return
        for event in events:
            self.journal.record("event", time=event.time, kind=event.kind, data=dict(event.data))

    def _watch_cancel(self) -> None:
        while not self._finished_watch:
            if self.external_cancel.wait(0.1):
                if self.state.reason is None:
                    self.state.reason = "interrupt"
                self.abort.set()
                return

    def _started(self) -> None:
        book = self.book
        self.journal.record(
            "run_started",
            run_id=self.run_id,
            playbook={
                "name": book.name,
                "description": book.description,
                "path": self.loaded.path,
                "sha256": self.loaded.sha256,
            },
            operator=self.operator,
            dry_run=self.dry_run,
            objectives={"rto_s": book.objectives.rto, "rpo_s": book.objectives.rpo},
            owners={"government": book.owners.government, "vendor": book.owners.vendor},
            sources=self._sources(),
        )

    def _sources(self) -> list[str]:
        names: list[str] = []
        for step in self.book.steps:
            if step.backup is not None:
                names.extend(step.backup.sources)
            for op in (step.restore, step.verify):
                if op is not None and op.source and op.source not in names:
                    names.append(op.source)
        return sorted(set(names))

    def _body(self) -> tuple[float | None, float | None]:
        if not self._probe_phase("preflight", self.book.preflight):
            return None, None
        if not self._probe_phase("steady_state", self.book.steady_state):
            return None, None
        if self.dry_run:
            self._dry_steps()
            return None, None
        canary = self._start_canary()
        monitor = StopMonitor(self) if self.book.stop_conditions else None
        if monitor is not None:
            monitor.start()
        try:
            self._steps()
        except KeyboardInterrupt:
            # SIGINT outside the CLI (which turns signals into the cancel event)
            self.state.reason = self.state.reason or "interrupt"
            self.state.status = "aborted"
            self.state.error = self.state.error or "interrupted"
            self.abort.set()
        except Exception as exc:  # noqa: BLE001 - whatever broke, what was done gets undone
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f"unexpected {type(exc).__name__}: {exc}"
            self.journal.record("phase", phase="steps", status="failed")
        finally:
            if monitor is not None:
                monitor.stop()
            if canary is not None:
                canary.stop()
        self._cleanup()
        self._probe_phase("steady_state_after", self.book.steady_state)
        return self._rto(), self._rpo(canary)

    # -- probes ---------------------------------------------------------------

    def _probe_phase(self, phase: str, probes: list[Step]) -> bool:
        if not probes:
            if phase == "steady_state_after":
                self._steady_after = True
            return True
        self.journal.record("phase", phase=phase, status="started")
        ctx = self.context(threading.Event()) if phase == "steady_state_after" else self.ctx
        ok = True
        problem = ""
        for probe in probes:
            outcome = self._attempts(probe, ctx, "probe", phase)
            if not outcome.ok:
                ok = False
                problem = problem or f'"{probe.name}" {outcome.status}: {outcome.error}'
                if phase != "steady_state_after":
                    break
        self.journal.record("phase", phase=phase, status="passed" if ok else "failed")
        if phase == "steady_state_after":
            self._steady_after = ok
        elif not ok:
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f"{phase} failed: {problem}"
        return ok

    _steady_after: bool | None = None

    # -- steps ----------------------------------------------------------------

    def _dry_steps(self) -> None:
        self.journal.record("phase", phase="steps", status="started")
        reachable: dict[str, str | None] = {}
        ok = True
        for step in self.book.steps:
            start = self.clock()
            text = describe(step)
            error = None
            for host in _hosts_of(step):
                if host not in reachable:
                    reachable[host] = self._reach(host)
                if reachable[host] is not None:
                    error = f"host {host} unreachable: {reachable[host]}"
                else:
                    text += f"\nhost {host} reachable"
            if step.when is not None:
                text += f"\nwhen: {step.when} -> {'run' if self._when(step) else 'skip'}"
            status: Status = "dry_run" if error is None else "failed"
            ok = ok and error is None
            self.record_step("step", "steps", step, start, Outcome(status, text, error), 0)
        self.journal.record("phase", phase="steps", status="passed" if ok else "failed")
        if not ok:
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = "a host is unreachable"

    def _reach(self, host: str) -> str | None:
        try:
            status, _, err = self.runners.for_host(host).run(["true"], timeout=15)
        except (RecoverydError, TimeoutError, OSError) as exc:
            return str(exc)
        return None if status == 0 else f"exit status {status}: {err.strip()}"

    def _steps(self) -> None:
        self.journal.record("phase", phase="steps", status="started")
        approved = self.book.approvals.required == 0
        for step in self.book.steps:
            if self.abort.is_set():
                break
            if not self._when(step):
                now = self.clock()
                self.record_step("step", "steps", step, now, Outcome("skipped", "when is false"), 0)
                continue
            if step.is_destructive and not approved:
                if not self._await_approvals():
                    break
                approved = True
            outcome = self._attempts(step, self.ctx, "step", "steps")
            if outcome.ok or outcome.undo is not None:
                self.state.done.append(_Done(step, outcome))
            if outcome.ok:
                self._measure(step, outcome)
                if step.marks is not None:
                    self.state.marks[step.marks] = self.clock()
                    self.journal.record("mark", mark=step.marks)
                continue
            self._step_failed(step, outcome)
            break
        if self.abort.is_set() and self.state.status == "passed":
            self.state.status = "aborted"
            self.state.reason = self.state.reason or "abort"
        status = "passed" if self.state.status == "passed" else "failed"
        self.journal.record("phase", phase="steps", status=status)

    def _measure(self, step: Step, outcome: Outcome) -> None:
        """Keep the count a `measure:` step printed (its first whole number)."""
        if step.measure is None:
            return
        found = _FIRST_NUMBER.search(outcome.output)
        if found is None:
            self.journal.record(
                "event",
                kind="measure_missing",
                data={"step": step.name, "measure": step.measure},
            )
            return
        self.state.measures[step.measure] = int(found.group(0))

    def _step_failed(self, step: Step, outcome: Outcome) -> None:
        if outcome.status == "aborted" or self.abort.is_set():
            self.state.status = "aborted"
            self.state.reason = self.state.reason or "abort"
            self.state.error = self.state.error or f'aborted during "{step.name}"'
        else:
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f'step "{step.name}" {outcome.status}: {outcome.error}'

    def _await_approvals(self) -> bool:
        need = self.book.approvals.required
        self.journal.record(
            "event",
            kind="approval_requested",
            data={"required": need, "command": f"recoveryd drill approve {self.run_id}"},
        )
        try:
            self.approvals.wait_for(need, self.book.approvals.timeout, self.abort)
        except TimeoutError:
            self.state.status = "failed"
            self.state.reason = "failure"
            self.state.error = f"fewer than {need} approval(s) arrived in time"
            return False
        except InterruptedError:
            return False
        return True

    def _when(self, step: Step) -> bool:
        if step.when is None:
            return True
        if isinstance(step.when, bool):
            return step.when
        return step.when.strip().lower() not in _FALSY

    def _attempts(self, step: Step, ctx: StepContext, type_: str, phase: str) -> Outcome:
        """Run with retries and delay; journal the final attempt."""
        attempts = 0
        start = self.clock()
        while True:
            attempts += 1
            try:
                outcome = execute(step, ctx, step.timeout or _default_timeout(step, type_))
            except RecoverydError as exc:
                outcome = Outcome("failed", "", exc.message)
            except Exception as exc:  # noqa: BLE001 - a failed step, journaled; the rest is undone
                outcome = Outcome("failed", "", f"unexpected {type(exc).__name__}: {exc}")
            if outcome.ok or attempts > step.retries or ctx.cancel.is_set():
                break
            if outcome.undo is not None:
                outcome.undo()
            if ctx.cancel.wait(step.delay):
                break
        self.record_step(type_, phase, step, start, outcome, attempts)
        return outcome

    def record_step(
        self, type_: str, phase: str, step: Step, start: datetime, out: Outcome, attempts: int
    ) -> None:
        self.journal.record(
            type_,
            phase=phase,
            name=step.name,
            kind=step.kind,
            start=iso(start),
            end=iso(self.clock()),
            status=out.status,
            attempts=attempts,
            destructive=step.is_destructive,
            output=out.output,
            error=out.error,
        )

    # -- rollback and cleanup -------------------------------------------------

    def _cleanup(self) -> None:
        """Rollbacks (when rollback_on says so) and fault undos, newest first."""
        reason = self.state.reason if self.state.status != "passed" else None
        roll = reason is not None and reason in self.book.rollback_on
        work = [d for d in self.state.done if (roll and d.step.rollback) or d.outcome.undo]
        if not work:
            return
        self.journal.record("phase", phase="rollback", status="started")
        ctx = self.context(threading.Event())  # rollbacks are not cancelled by the abort
        ok = True
        for done in reversed(work):
            if done.outcome.undo is not None:
                start = self.clock()
                try:
                    result = done.outcome.undo()
                except Exception as exc:  # noqa: BLE001 - the other undos and rollbacks still run
                    result = Outcome("failed", "", f"{type(exc).__name__}: {exc}")
                undo_step = done.step.model_copy(update={"name": f"undo: {done.step.name}"})
                self.record_step("rollback", "rollback", undo_step, start, result, 1)
                ok = ok and result.ok
            if roll and done.step.rollback is not None:
                result = self._attempts(done.step.rollback, ctx, "rollback", "rollback")
                ok = ok and result.ok
        self.journal.record("phase", phase="rollback", status="passed" if ok else "failed")

    # -- measures ----------------------------------------------------------------

    def _start_canary(self) -> CanaryWriter | None:
        if self.book.canary is None:
            return None
        canary = CanaryWriter(self.book.canary, self.run_id, self.clock)
        start = self.clock()
        try:
            canary.prepare()
        except Exception as exc:  # noqa: BLE001 - psycopg errors vary; recorded, the drill goes on
            self.journal.record(
                "probe", phase="canary", name="canary", kind="sql", start=iso(start),
                end=iso(self.clock()), status="failed", attempts=1, destructive=False,
                output="", error=f"cannot prepare the canary table: {type(exc).__name__}: {exc}",
            )  # fmt: skip
            return None
        if not canary.start():
            self.journal.record(
                "probe", phase="canary", name="canary", kind="sql", start=iso(start),
                end=iso(self.clock()), status="failed", attempts=1, destructive=False,
                output="", error="the canary could not write to the primary before the steps",
            )  # fmt: skip
        return canary

    def _rto(self) -> float | None:
        marks = self.state.marks
        if "fault" in marks and "recovered" in marks:
            return (marks["recovered"] - marks["fault"]).total_seconds()
        return None

    def _rpo(self, canary: CanaryWriter | None) -> float | None:
        if canary is None or "fault" not in self.state.marks:
            return None
        start = self.clock()
        error = None
        newest = None
        try:
            newest = canary.newest_surviving(before=self.state.marks["fault"])
        except Exception as exc:  # noqa: BLE001 - recorded in the journal
            error = f"cannot read the canary on the new primary: {type(exc).__name__}: {exc}"
        rpo = rpo_seconds(self.state.marks["fault"], newest)
        text = (
            f"{canary.written} rows written, {canary.failed} writes failed; newest surviving "
            f"row written at {iso(newest) if newest else 'none'}; RPO {rpo}"
        )
        self.journal.record(
            "probe", phase="canary", name="canary", kind="sql", start=iso(start),
            end=iso(self.clock()), status="ok" if error is None and newest else "failed",
            attempts=1, destructive=False, output=text, error=error,
        )  # fmt: skip
        return rpo

    def _finish(self, rto: float | None, rpo: float | None) -> DrillResult:
        st = self.state
        if self._steady_after is False and st.status == "passed":
            st.status = "failed"
            st.error = "steady state did not hold after the drill"
        objectives = self.book.objectives
        met = st.status == "passed" and self._steady_after is not False
        if not self.dry_run:
            if objectives.rto is not None:
                met = met and rto is not None and rto <= objectives.rto
            if objectives.rpo is not None:
                met = met and rpo is not None and rpo <= objectives.rpo
        if met is False and st.status == "passed" and st.error is None:
            st.error = "an objective was missed"
        self.journal.record(
            "run_finished",
            status=st.status,
            rto_s=rto,
            rpo_s=rpo,
            objectives_met=met,
            steady_state_restored=self._steady_after,
            error=st.error,
        )
        return DrillResult(
            run_id=self.run_id,
            status=st.status,
            rto_seconds=rto,
            rpo_seconds=rpo,
            objectives_met=met,
            journal=self.journal.path,
            error=st.error,
            interrupted=st.reason == "interrupt",
            measures=dict(st.measures),
        )

    def _with_report(self, result: DrillResult) -> DrillResult:
        if self.report is None:
            return result
        try:
            path = self.report(self.state_dir, self.run_id, tuple(self.loaded.secrets))
        except Exception:  # noqa: BLE001 - the run is journaled; `recoveryd report` can retry
            return result
        return DrillResult(**{**result.__dict__, "report": path})


def _hosts_of(step: Step) -> list[str]:
    hosts = [h for h in (step.ssh, step.fault.ssh if step.fault else None) if h]
    if step.wait is not None and step.wait.ssh:
        hosts.append(step.wait.ssh)
    return hosts


def _referenced_hosts(book: Playbook) -> set[str]:
    found: set[str] = set()

    def walk(step: Step | None) -> None:
        if step is not None:
            found.update(_hosts_of(step))
            walk(step.rollback)

    for group in (book.preflight, book.steady_state, book.stop_conditions, book.steps):
        for step in group:
            walk(step)
    return found


def _default_timeout(step: Step, type_: str) -> float | None:
    if type_ == "probe" and step.wait is None:
        return PROBE_TIMEOUT
    return None
