"""The governor: samples signals, keeps the level, admits, pauses and throttles work.

Implements `flow.Admission`. One sampling thread calls `tick()` every
`interval`; `tick()` is public so tests drive it with an injected clock and
simulated readings. Level changes run the configured `on_enter`/`on_exit`
playbooks in a separate worker thread (a slow playbook never stalls sampling)
and every change, deferral, pause, resume, override and action is an event in
the state store and the log.

Paused work: a gate's `checkpoint()` blocks while its priority is paused. A
paused dump keeps its source stream open: free for SQLite (a private temp
copy) and directories (a tar of files), but a PostgreSQL/MariaDB dump keeps its
transaction open. So a pause is bounded by `max_pause`; past it the gate raises
InterruptedOperation, the pipeline aborts the dump and commits nothing, and
the job is retried later by its schedule.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from recoveryd import flow
from recoveryd.governor import decide
from recoveryd.governor.decide import Band, Hold, Level, LevelState
from recoveryd.governor.gate import GovernedGate
from recoveryd.governor.level import EventReader, recorded_level
from recoveryd.governor.signals import Readings

log = structlog.get_logger("recoveryd.governor")


class EventSink(EventReader, Protocol):
    """What the governor needs of `state.StateStore`: to record events and read them back."""

    def record_event(
        self, kind: str, data: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> int: ...


class _Override(threading.local):
    """The RPO override `admit` granted in this thread, for the `gate` call that follows."""

    priority: str | None = None


@dataclass(frozen=True)
class GovernorStatus:
    """What `recoveryd status` and `/metrics` show."""

    level: str
    readings: Mapping[str, float]
    held_back: Sequence[str]
    throttle_factor: float = 1.0
    reasons: Sequence[str] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "level": self.level,
            "readings": dict(self.readings),
            "held_back": list(self.held_back),
            "throttle_factor": self.throttle_factor,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Actions:
    """Playbooks to run when a level is entered or left."""

    on_enter: Mapping[str, Sequence[Path]]
    on_exit: Mapping[str, Sequence[Path]]


class PlaybookOutcome(Protocol):
    """What the governor reads of a shedding playbook's run (a drill result)."""

    @property
    def status(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    @property
    def measures(self) -> Mapping[str, int]:
        """Counts the playbook measured (e.g. `requests_shed`)."""
        ...


PlaybookRunner = Callable[[Path, Callable[[], str]], PlaybookOutcome]
"""Runs one shedding playbook. The second argument is the governor's own `level`, which the
playbook's `pressure` probes use: the governor never reads its level back from a file."""

NO_ACTIONS = Actions({}, {})
DEFAULT_HOLD = Hold()


class Governor:
    """A flow.Admission driven by sampled pressure. Thread-safe."""

    def __init__(
        self,
        sampler: Callable[[], Readings],
        bands: Mapping[str, Band],
        *,
        hold: Hold = DEFAULT_HOLD,
        interval: float = 1.0,
        events: EventSink | None = None,
        run_playbook: PlaybookRunner | None = None,
        actions: Actions = NO_ACTIONS,
        max_pause: float = 600.0,
        throttled_bandwidth: float = 32 * 1024 * 1024,
        alert: Callable[[str, Mapping[str, Any]], None] | None = None,
        probes: Sequence[Any] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sampler = sampler
        self.bands = dict(bands)
        self.hold = hold
        self.interval = interval
        self._events = events
        self._run_playbook = run_playbook
        self._actions = actions
        self.max_pause = max_pause
        self._ceiling = float(throttled_bandwidth)
        self._alert = alert
        self._probes = list(probes)
        self._clock = clock
        self._aimd = decide.Aimd()
        self._cond = threading.Condition()
        self._state = LevelState()
        self._readings: Mapping[str, float] = {}
        self._factor = 1.0
        self._waiting: dict[str, str] = {}  # job -> priority
        self._paused: dict[int, str] = {}  # id(gate) -> job
        self._overrides = _Override()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._actions_q: queue.Queue[tuple[str, str, Path] | None] = queue.Queue()
        self._actions_thread: threading.Thread | None = None
        self._pending = 0
        self.cpu_seconds = 0.0  # CPU time the sampling thread spent (the governor's own cost)
        self.ticks = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the probes, the sampling thread and the action worker (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._reset_recorded_level("governor started")
        for probe in self._probes:
            probe.start()
        self._actions_thread = threading.Thread(
            target=self._action_worker, name="governor-actions", daemon=True
        )
        self._actions_thread.start()
        self._thread = threading.Thread(target=self._loop, name="governor", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop sampling; pending playbook actions finish first (bounded by `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        for probe in self._probes:
            probe.stop()
        if self._actions_thread is not None:
            self._actions_q.put(None)
            self._actions_thread.join(timeout=timeout)
            self._actions_thread = None
        with self._cond:
            self._cond.notify_all()
            level = self._state.level
        if level != "normal":
            self._event(
                "level_change", {"from": level, "to": "normal", "reasons": ["governor stopped"]}
            )

    def _reset_recorded_level(self, why: str) -> None:
        """A governor that died without stopping left its last level recorded: reset it."""
        if self._events is None:
            return
        try:
            last = recorded_level(self._events)
        except Exception as exc:  # noqa: BLE001 - an unreadable history must not stop the daemon
            log.warning("governor_level_unknown", error=str(exc))
            return
        if last.level != "normal":
            self._event("level_change", {"from": last.level, "to": "normal", "reasons": [why]})

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            cpu0 = time.thread_time()
            try:
                self.tick()
            except Exception as exc:
                log.exception("governor_tick_failed", error=str(exc))
            self.cpu_seconds += time.thread_time() - cpu0
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    # --- decision --------------------------------------------------------------------------

    def tick(self, readings: Readings | None = None, *, now: float | None = None) -> Level:
        """Sample (or take `readings`), fold into the level, act on a change. Returns the level."""
        values = dict(self._sampler() if readings is None else readings)
        at = self._clock() if now is None else now
        with self._cond:
            result = decide.decide(self._state, values, self.bands, self.hold, at)
            self._state = result.state
            self._readings = values
            self._factor = self._aimd.step(self._factor, result.state.level)
            self.ticks += 1
            if result.changed:
                self._cond.notify_all()
        if result.changed:
            self._on_change(result.previous, result.state.level, result.state.reasons, values)
        return result.state.level

    def _on_change(
        self, old: Level, new: Level, reasons: Sequence[str], readings: Mapping[str, float]
    ) -> None:
        shown = {k: round(readings[k], 2) for k in reasons if k in readings}
        self._event("level_change", {"from": old, "to": new, "reasons": list(reasons), **shown})
        if self._alert is not None:
            self._alert("shed", {"from": old, "to": new, "reasons": list(reasons)})
        up = decide.rank(new) > decide.rank(old)
        if up:
            crossed = [
                lv for lv in decide.LEVELS if decide.rank(old) < decide.rank(lv) <= decide.rank(new)
            ]
            for lv in crossed:
                for path in self._actions.on_enter.get(lv, ()):
                    self._queue_action("on_enter", lv, path)
        else:
            crossed = [
                lv
                for lv in reversed(decide.LEVELS)
                if decide.rank(new) < decide.rank(lv) <= decide.rank(old)
            ]
            for lv in crossed:
                for path in self._actions.on_exit.get(lv, ()):
                    self._queue_action("on_exit", lv, path)

    def _queue_action(self, trigger: str, level: str, path: Path) -> None:
        with self._cond:
            self._pending += 1
        self._actions_q.put((trigger, level, path))

    def _action_worker(self) -> None:
        while True:
            item = self._actions_q.get()
            if item is None:
                return
            trigger, level, path = item
            try:
                self.run_action(trigger, level, path)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def run_action(self, trigger: str, level: str, path: Path) -> None:
        """Run one shedding playbook and record its result as a `shed_action` event."""
        data: dict[str, Any] = {"trigger": trigger, "level": level, "playbook": str(path)}
        if self._run_playbook is None:
            data.update(result="skipped", error="no playbook runner configured")
        else:
            try:
                outcome = self._run_playbook(path, self.level)
            except Exception as exc:  # noqa: BLE001 - a failed action is recorded, never fatal
                data.update(result="failed", error=str(exc))
            else:
                data.update(result=outcome.status, run_id=outcome.run_id)
                # counts the playbook measured, e.g. `requests_shed` read from nginx's log
                counts = {k: v for k, v in outcome.measures.items() if type(v) is int and v >= 0}
                data.update({k: v for k, v in counts.items() if k not in data})
        self._event("shed_action", data)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every queued playbook action has run (tests, shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    # --- flow.Admission --------------------------------------------------------------------

    def level(self) -> str:
        with self._cond:
            return self._state.level

    def admit(self, priority: str, *, job: str, due_soon: bool = False) -> str:
        """`run`, `throttled` or `wait` (`decide.admit`); records deferrals and RPO overrides."""
        with self._cond:
            level = self._state.level
            verdict = decide.admit(level, priority, due_soon=due_soon)
            first_wait = verdict.verdict == "wait" and job not in self._waiting
            if verdict.verdict == "wait":
                self._waiting[job] = priority
            else:
                self._waiting.pop(job, None)
        data = {"job": job, "priority": priority, "level": level}
        if first_wait:
            self._event("deferred", data)
        if verdict.rpo_override:
            self._overrides.priority = priority
            self._event("rpo_override", data)
            if self._alert is not None:
                self._alert("rpo_override", data)
        return verdict.verdict

    def gate(
        self,
        priority: str,
        *,
        job: str | None = None,
        override: bool | None = None,
        cancel: threading.Event | None = None,
    ) -> flow.Gate:
        """The gate for running work of `priority`.

        `override` keeps the job running (throttled) at any level; when not given,
        an RPO override granted by `admit` in this thread just before applies.
        `cancel` (the work's stop) ends its pauses and throttled waits, as the
        governor's own stop does.
        """
        if override is None:
            override = self._overrides.priority == priority
            self._overrides.priority = None
        name = job or f"{priority} work"
        return GovernedGate(self, priority, job=name, override=override, cancel=cancel)

    def policy(self, priority: str, *, override: bool = False) -> decide.GatePolicy:
        with self._cond:
            return decide.running_policy(self._state.level, priority, override=override)

    def throttle_factor(self) -> float:
        with self._cond:
            return self._factor

    def throttled_rate(self) -> float:
        return decide.throttled_rate(self._ceiling, self.throttle_factor())

    def status(self) -> GovernorStatus:
        with self._cond:
            held = [f"{job} ({prio}): waiting" for job, prio in sorted(self._waiting.items())]
            held += [f"{job}: paused" for job in sorted(self._paused.values())]
            return GovernorStatus(
                level=self._state.level,
                readings=dict(self._readings),
                held_back=held,
                throttle_factor=self._factor,
                reasons=self._state.reasons,
            )

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until `predicate()` holds (checked on every level change) or `timeout` passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
            return True

    # --- internals used by gates -----------------------------------------------------------

    def record(self, kind: str, data: Mapping[str, Any]) -> None:
        """An event in the log and the state store (used by gates too)."""
        self._event(kind, data)

    def _event(self, kind: str, data: Mapping[str, Any], *, source: str | None = None) -> None:
        log.info(f"governor_{kind}", **data)
        if self._events is not None:
            try:
                self._events.record_event(kind, data, source=source)
            except Exception as exc:  # noqa: BLE001 - an event lost is logged, work goes on
                log.warning("governor_event_not_recorded", kind=kind, error=str(exc))

    def must_pause(self, gate: GovernedGate) -> bool:
        """Called with the condition held."""
        if gate.cancel.is_set() or self._stop.is_set():
            return False
        return decide.running_policy(
            self._state.level, gate.priority, override=gate.override
        ).paused

    def set_paused(self, gate: GovernedGate, paused: bool) -> None:
        with self._cond:
            if paused:
                self._paused[id(gate)] = gate.job
            else:
                self._paused.pop(id(gate), None)

    @property
    def stopping(self) -> threading.Event:
        return self._stop
