"""What a scheduled job does around its operation: admission, locks, records, alerts.

`JobRunner` is the function the scheduler calls for every `JobSpec`. For each
run it asks the admission (the load governor) first, defers on "wait", takes
the per-source locks (a source's backup and the prune never overlap), calls
the operation through `Operations`, and then records the outcome everywhere
it belongs: a run in the state store, one summary log event, the metrics, an
audit record, and an alert on failure or on recovery after a failure.

`Operations` is the seam to the product's operations (`ops.AppOperations`, over
`recoveryd.app` and `recoveryd.drills.api`); tests inject their own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from recoveryd import flow
from recoveryd.audit import AuditLog
from recoveryd.config import LoadedConfig
from recoveryd.daemon.fleetmode import Claim, FleetMode
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Alert, Notifier
from recoveryd.daemon.rpo import due_soon
from recoveryd.daemon.schedule import JobSpec
from recoveryd.drills.api import DrillResult, LevelSource
from recoveryd.errors import ExitCode, InterruptedOperation, RecoverydError, RefusedError
from recoveryd.observe import get_logger
from recoveryd.secrets import redact
from recoveryd.state import StateStore

log = get_logger("recoveryd.daemon.jobs")

RESULT_EXIT = {
    "ok": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "integrity": ExitCode.INTEGRITY,
    "objective_missed": ExitCode.OBJECTIVE_MISSED,
    "deferred": ExitCode.REFUSED,
    "refused": ExitCode.REFUSED,
    "degraded": ExitCode.DEGRADED,
    "unavailable": ExitCode.FAILED,
    "aborted": ExitCode.INTERRUPTED,
}


class UnavailableError(RecoverydError):
    """The job kind exists in the configuration but this installation cannot run it yet."""


@dataclass(frozen=True)
class Outcome:
    """What one job run achieved."""

    # ok | degraded | failed | integrity | objective_missed | aborted | unavailable | deferred
    # | refused (prune: more than half of a source's snapshots; needs an operator's --force)
    result: str
    bytes_read: int = 0
    bytes_stored: int = 0
    snapshot_ids: tuple[str, ...] = ()
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return int(RESULT_EXIT.get(self.result, ExitCode.FAILED))


class Operations(Protocol):
    """The operations jobs run; each returns an Outcome or raises a RecoverydError."""

    def backup(
        self,
        cfg: LoadedConfig,
        source: str,
        *,
        gate: flow.Gate,
        cancel: threading.Event,
        labels: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Snapshot `source`, passing `gate` at chunk boundaries; `labels` go into the
        manifest (fleet mode: the slot and the member). The job runner has admitted the job
        and records its run: the operation does neither."""
        ...

    def slot_taken(self, cfg: LoadedConfig, source: str, slot: str) -> datetime | None:
        """The end time of the snapshot of `source` labelled with this fleet slot in one of
        its targets; None when there is none."""
        ...

    def verify(self, cfg: LoadedConfig, source: str, read_data: bool | str) -> Outcome: ...

    def prune(self, cfg: LoadedConfig) -> Outcome: ...

    def replicate(self, cfg: LoadedConfig) -> Outcome: ...

    def drill(self, cfg: LoadedConfig, spec: JobSpec, *, cancel: threading.Event) -> Outcome: ...

    def restore_drill(
        self, cfg: LoadedConfig, source: str, *, cancel: threading.Event
    ) -> Outcome: ...

    def run_playbook(
        self,
        cfg: LoadedConfig,
        playbook: Path,
        level: LevelSource,
        *,
        stopping: threading.Event | None = None,
    ) -> DrillResult:
        """Run a shedding playbook of the load governor; `level` is the governor's own;
        `stopping` set interrupts it (a wait for approvals too)."""
        ...

    def prepare(self, cfg: LoadedConfig) -> None:
        """Check the targets before the first job (RecoverydError naming one without a
        repository: `recoveryd init` creates them, the daemon never does)."""
        ...

    def last_snapshots(self, cfg: LoadedConfig) -> dict[str, datetime]: ...

    def anchor(self, cfg: LoadedConfig) -> None:
        """Anchor the heads of the local logs in the stores (never raises for a store)."""
        ...

    def last_copies(self, cfg: LoadedConfig) -> dict[tuple[str, str], datetime]:
        """(source, target) -> newest snapshot of the source on that target, from the stores."""
        ...


class SourceLocks:
    """One lock per source; prune takes them all (in name order, so no deadlock)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    @contextmanager
    def hold(self, names: Sequence[str], cancel: threading.Event) -> Iterator[None]:
        """Hold the locks of `names`; InterruptedOperation when `cancel` is set while waiting."""
        with ExitStack() as stack:
            for name in sorted(set(names)):
                lock = self._lock(name)
                while not lock.acquire(timeout=0.2):
                    if cancel.is_set():
                        raise InterruptedOperation(f"{name}: shutting down before the job started")
                stack.callback(lock.release)
            yield


@dataclass
class JobServices:
    """Everything a job needs; `config` is replaced on reload (SIGHUP)."""

    config: LoadedConfig
    state: StateStore
    audit: AuditLog
    metrics: DaemonMetrics
    notifier: Notifier
    admission: flow.Admission
    ops: Operations
    cancel: threading.Event
    stopping: threading.Event
    defer: Callable[[JobSpec, datetime], None]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    retry_after: float = 60.0
    # drills roll back as soon as the daemon stops; uploads get the grace period first
    cancel_drills: threading.Event = field(default_factory=threading.Event)
    fleet: FleetMode | None = None  # fleet mode: runs only what this member claims


class JobRunner:
    """Callable by the scheduler: runs one job end to end, never raises."""

    def __init__(self, services: JobServices, *, on_change: Callable[[], None] = lambda: None):
        self.s = services
        self.locks = SourceLocks()
        self.on_change = on_change
        self._lock = threading.Condition()
        self._running: dict[str, datetime] = {}
        self._failing: set[str] = set()
        # for `daemon --once` (bounded: the daemon runs for months)
        self.outcomes: deque[tuple[JobSpec, Outcome]] = deque(maxlen=10_000)

    def running(self) -> dict[str, datetime]:
        with self._lock:
            return dict(self._running)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no job runs; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left if left is not None else 1.0)
        return True

    def __call__(self, spec: JobSpec) -> None:
        if self.s.stopping.is_set():
            return
        if self.s.fleet is not None and self.s.fleet.elsewhere(spec):
            return  # another member's job
        with self._lock:
            if spec.id in self._running:
                log.info("job_skipped", job=spec.id, reason="the previous run is still going")
                return
            self._running[spec.id] = self.s.clock()
            self.s.metrics.running.set(len(self._running))
        self.on_change()
        try:
            self._run(spec)
        except Exception as exc:
            log.exception("job_crashed", job=spec.id, error=redact(str(exc)))
        finally:
            with self._lock:
                self._running.pop(spec.id, None)
                self.s.metrics.running.set(len(self._running))
                self._lock.notify_all()
            self.on_change()

    def _run(self, spec: JobSpec) -> None:
        if self.s.fleet is None:
            self._run_claimed(spec, None)
            return
        with self.s.fleet.claim(spec) as claim:
            if claim is not None:  # the slot's record is written before its lock is released
                self.s.fleet.finished(spec, claim, self._run_claimed(spec, claim))

    def _run_claimed(self, spec: JobSpec, claim: Claim | None) -> str:
        """Run `spec` (admitted first) and record it; its result ("deferred" when the
        admission made it wait)."""
        s = self.s
        verdict = s.admission.admit(spec.priority, job=spec.id, due_soon=self._due_soon(spec))
        if verdict == "wait":
            self._deferred(spec)
            return "deferred"
        started = s.clock()
        run_id = s.state.start_run(f"daemon_{spec.kind}", source=spec.source, at=started)
        t0 = time.monotonic()
        outcome = self._execute(spec, claim)
        if claim is not None:
            outcome = replace(outcome, details={**outcome.details, **claim.labels()})
            s.metrics.fleet_runs.labels(spec.kind, claim.member).inc()
        if outcome.error:
            outcome = replace(outcome, error=redact(outcome.error))
        if outcome.result == "deferred" and not s.stopping.is_set():
            s.defer(spec, s.clock() + timedelta(seconds=s.retry_after))
        seconds = time.monotonic() - t0
        ended = s.clock()
        s.state.end_run(
            run_id,
            outcome.result,
            bytes_read=outcome.bytes_read,
            bytes_stored=outcome.bytes_stored,
            snapshot_id=",".join(outcome.snapshot_ids) or None,
            error=outcome.error,
            details={"job": spec.id, "admission": verdict, **outcome.details},
            at=ended,
        )
        self._account(spec, outcome, seconds, ended, started, verdict)
        return outcome.result

    def _due_soon(self, spec: JobSpec) -> bool:
        if spec.kind != "backup" or spec.source is None:
            return False
        src = self.s.metrics.sources().get(spec.source)
        return src is not None and due_soon(src, self.s.clock(), self.s.retry_after)

    def _deferred(self, spec: JobSpec) -> None:
        s = self.s
        when = s.clock() + timedelta(seconds=s.retry_after)
        s.state.record_event(
            "job_deferred",
            {"job": spec.id, "priority": spec.priority, "level": s.admission.level(),
             "retry_at": when.isoformat()},
            source=spec.source,
        )  # fmt: skip
        s.metrics.deferred.labels(spec.kind).inc()
        log.info("job_deferred", job=spec.id, level=s.admission.level(), retry_in=s.retry_after)
        self.outcomes.append((spec, Outcome("deferred")))
        if not s.stopping.is_set():
            s.defer(spec, when)

    def _execute(self, spec: JobSpec, claim: Claim | None = None) -> Outcome:
        s = self.s
        cfg = s.config
        sources = (
            [spec.source] if spec.kind == "backup" and spec.source
            else list(cfg.config.sources) if spec.kind == "prune" else []
        )  # fmt: skip
        try:
            with self.locks.hold(sources, s.cancel):
                return self._operation(spec, cfg, claim)
        except InterruptedOperation as exc:
            return Outcome("aborted", error=exc.message)
        except UnavailableError as exc:
            return Outcome("unavailable", error=exc.message)
        except RefusedError as exc:  # the operation itself met load shedding: retry later
            return Outcome("deferred", error=exc.message)
        except RecoverydError as exc:
            result = {
                ExitCode.INTEGRITY: "integrity",
                ExitCode.OBJECTIVE_MISSED: "objective_missed",
                ExitCode.REFUSED: "refused",  # e.g. a prune that needs an operator's --force
            }
            return Outcome(result.get(exc.exit_code, "failed"), error=redact(exc.message))
        except Exception as exc:
            log.exception("job_error", job=spec.id)
            return Outcome("failed", error=redact(f"unexpected {type(exc).__name__}: {exc}"))

    def _operation(self, spec: JobSpec, cfg: LoadedConfig, claim: Claim | None) -> Outcome:
        s = self.s
        if s.cancel.is_set():
            raise InterruptedOperation(f"{spec.id}: shutting down")
        if spec.kind == "backup" and spec.source:
            # stops when the member is cut off from etcd, too
            cancel = s.cancel if claim is None else claim.cancel_event(s.cancel)
            # this thread's admission, its RPO override; paused or throttled until `cancel`
            gate = s.admission.gate(spec.priority, cancel=cancel)
            if claim is not None:
                labels = claim.labels()
                return s.ops.backup(cfg, spec.source, gate=gate, cancel=cancel, labels=labels)
            return s.ops.backup(cfg, spec.source, gate=gate, cancel=cancel)
        if spec.kind == "verify" and spec.source:
            return s.ops.verify(cfg, spec.source, spec.read_data)
        if spec.kind == "prune":
            return s.ops.prune(cfg)
        if spec.kind == "replicate":
            return s.ops.replicate(cfg)
        if spec.kind == "drill":
            return s.ops.drill(cfg, spec, cancel=s.cancel_drills)
        if spec.kind == "restore_drill" and spec.source:
            return s.ops.restore_drill(cfg, spec.source, cancel=s.cancel_drills)
        raise UnavailableError(f"{spec.id}: unknown job kind {spec.kind}")

    def _account(
        self,
        spec: JobSpec,
        outcome: Outcome,
        seconds: float,
        ended: datetime,
        started: datetime,
        verdict: str,
    ) -> None:
        s = self.s
        self.outcomes.append((spec, outcome))
        m = s.metrics
        m.jobs.labels(spec.kind, outcome.result).inc()
        m.duration.labels(spec.kind).observe(seconds)
        label = spec.source or "-"
        if outcome.bytes_read:
            m.bytes_read.labels(label).inc(outcome.bytes_read)
        if outcome.bytes_stored:
            m.bytes_stored.labels(label).inc(outcome.bytes_stored)
        if spec.kind == "backup" and spec.source and outcome.result in ("ok", "degraded"):
            m.record_success(spec.source, ended)
            for target in outcome.details.get("targets") or ():
                m.record_copy(spec.source, str(target), ended)
        for copied in outcome.details.get("copied") or ():  # replicas (catch-up)
            m.record_copy(str(copied["source"]), str(copied["to"]), ended)
        if outcome.result not in ("ok", "aborted", "deferred"):
            m.failures.labels(spec.kind, label).inc()
        event = log.info if outcome.result in ("ok", "aborted") else log.error
        event(
            "job_finished",
            job=spec.id,
            kind=spec.kind,
            source=spec.source,
            result=outcome.result,
            seconds=round(seconds, 3),
            bytes_read=outcome.bytes_read,
            bytes_stored=outcome.bytes_stored,
            snapshots=list(outcome.snapshot_ids),
            admission=verdict,
            error=outcome.error,
        )
        self._audit(spec, outcome, started)
        self._alert(spec, outcome)

    def _audit(self, spec: JobSpec, outcome: Outcome, started: datetime) -> None:
        args = [a for a in (spec.source, spec.playbook) if a]
        try:
            self.s.audit.record(
                origin="daemon",
                command=spec.kind,
                args=args,
                result=outcome.result,
                exit_code=outcome.exit_code,
                error=outcome.error,
                started=started.isoformat(),
                details={"job": spec.id, "snapshots": list(outcome.snapshot_ids)},
            )
        except OSError as exc:
            log.error("audit_write_failed", job=spec.id, error=str(exc))

    def _alert(self, spec: JobSpec, outcome: Outcome) -> None:
        if outcome.result in ("aborted", "deferred"):
            return
        what = f"{spec.kind} of {spec.source}" if spec.source else spec.id
        kind = {"degraded": "under_replicated", "refused": "failure"}.get(outcome.result)
        if outcome.result == "ok":
            if spec.id in self._failing:
                self._failing.discard(spec.id)
                self.s.notifier.notify(
                    Alert("recovery", f"{what} succeeded again", f"{spec.id} is back to normal.",
                          source=spec.source)
                )  # fmt: skip
            return
        if spec.id in self._failing:
            return  # already said; the next alert is the recovery (or the overdue source)
        self._failing.add(spec.id)
        self.s.notifier.notify(
            Alert(
                kind or "failure",
                f"{what} {outcome.result.replace('_', ' ')}",
                outcome.error or "no detail",
                source=spec.source,
                details={"job": spec.id, "result": outcome.result},
            )
        )
