"""The daemon (composition root): configuration -> scheduler, governor, metrics, alerts, signals.

Life cycle: load and validate the configuration, take the state directory's
lock, build the parts, catch up sources whose RPO broke while the daemon was
down (once each), start the scheduler, tell systemd READY=1, then wait for
signals:

- SIGTERM / SIGINT: stop taking work (STOPPING=1); running jobs get
  `daemon.shutdown_grace` to finish, then are cancelled through the cancel
  event (the backup pipeline aborts cleanly: no manifest, multipart uploads
  aborted); exit 0.
- SIGHUP: reload the configuration (RELOADING=1). An invalid file is refused
  with an error event and the running configuration stays; changed schedules
  take effect at once.

`--once` runs every job that is due now, waits for them and returns the worst
exit code, without the scheduler thread (for cron and tests).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from recoveryd import flow
from recoveryd.audit import AuditLog
from recoveryd.config import LoadedConfig, load_config
from recoveryd.daemon.due import due_once, newest_in_stores, source_rpos
from recoveryd.daemon.fleetwiring import build_fleet, publish, start_fleet
from recoveryd.daemon.jobs import JobRunner, JobServices, Operations
from recoveryd.daemon.metrics import (
    LEVELS,
    DaemonMetrics,
    Health,
    MetricsServer,
    restart_server,
)
from recoveryd.daemon.notify import Alert, Notifier, governor_alert
from recoveryd.daemon.ops import AppOperations
from recoveryd.daemon.overdue import OverdueWatch
from recoveryd.daemon.rpo import SourceRpo, catch_up
from recoveryd.daemon.runtime import STATUS_FILE, DaemonLock, StatusFile
from recoveryd.daemon.schedule import JobSpec, Scheduler, plan_config
from recoveryd.daemon.sdnotify import Notifier as SdNotifier
from recoveryd.daemon.sdnotify import Watchdog
from recoveryd.daemon.statusdoc import DaemonSnapshot, status_document, status_line
from recoveryd.daemon.streams import StreamSupervisor
from recoveryd.drills.api import DrillResult
from recoveryd.errors import ConfigError, ExitCode, KeyFileError, RecoverydError
from recoveryd.observe import get_logger
from recoveryd.secrets import resolve_secret
from recoveryd.state import StateStore

if TYPE_CHECKING:  # the governor (psutil) is imported only when configured
    from recoveryd.daemon.fleetmode import FleetMode
    from recoveryd.governor import Governor

log = get_logger("recoveryd.daemon.service")
ABORT_WAIT = 30.0  # after the grace period: how long cancelled jobs get to clean up
ANCHOR_INTERVAL = 300.0  # log heads into the stores at least this often (promised: 10 min)


def state_dir_of(cfg: LoadedConfig) -> Path:
    return cfg.resolve_path(cfg.config.state_dir)


@dataclass
class _Signals:
    stop: threading.Event = field(default_factory=threading.Event)
    reload: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    signum: int | None = None


class Daemon:
    """`recoveryd daemon`: run with `run()` from the main thread."""

    def __init__(
        self,
        config_path: str | None,
        *,
        once: bool = False,
        ops: Operations | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        member: str | None = None,  # fleet mode: --member / RECOVERYD_MEMBER
    ) -> None:
        self.config_path, self.member = config_path, member
        self.once = once
        self.ops: Operations = ops or AppOperations()
        self.clock = clock
        self.sd = SdNotifier(environ)
        self.signals = _Signals()
        self.cancel = threading.Event()
        self.stopping = threading.Event()
        self.started = clock()
        self.governor: Governor | None = None
        self.fleet: FleetMode | None = None
        self.streams: StreamSupervisor | None = None
        self.metrics_server: MetricsServer | None = None
        self._state = "starting"

    # --- start -----------------------------------------------------------------------------

    def run(self) -> int:
        cfg = load_config(self.config_path)
        specs = plan_config(cfg)
        state_dir = state_dir_of(cfg)
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        lock = DaemonLock(state_dir)
        lock.acquire()
        try:
            return self._run_locked(cfg, specs, state_dir, lock)
        finally:
            lock.release()

    def _run_locked(
        self, cfg: LoadedConfig, specs: list[JobSpec], state_dir: Path, lock: DaemonLock
    ) -> int:
        self.state = StateStore(state_dir)
        self.status_file = StatusFile(state_dir / STATUS_FILE)
        self.metrics = DaemonMetrics(self.clock)
        self.notifier = Notifier(
            cfg.config.notify,
            state_dir / "spool",
            on_drop=self._spool_dropped,
            secret=lambda ref: resolve_secret(ref, cfg.path.parent, setting="notify.password"),
        )
        self.overdue = OverdueWatch(self.state, self.notifier.notify)
        if lock.previous_pid:
            log.warning("stale_lock_taken_over", previous_pid=lock.previous_pid)
        self.admission = self._build_admission(cfg)
        self.scheduler = Scheduler(
            self._dispatch,
            max_concurrent=cfg.config.daemon.max_concurrent_jobs,
            timezone=cfg.config.daemon.timezone,
            jitter=cfg.config.daemon.jitter,
            heartbeat_interval=self.sd.heartbeat_interval(),
            aligned=cfg.config.fleet is not None,
        )
        self.services = JobServices(
            config=cfg,
            state=self.state,
            audit=AuditLog(state_dir),
            metrics=self.metrics,
            notifier=self.notifier,
            admission=self.admission,
            ops=self.ops,
            cancel=self.cancel,
            stopping=self.stopping,
            defer=lambda spec, when: self.scheduler.run_at(spec, when, tag="retry"),
            clock=self.clock,
        )
        self.runner = JobRunner(self.services, on_change=self._write_status)
        if cfg.config.fleet is not None:
            self.fleet = self.services.fleet = build_fleet(
                lambda: self.services.config, member=self.member, state=self.state,
                scheduler=self.scheduler, notifier=self.notifier, ops=self.ops, clock=self.clock,
                changed=self._write_status, metrics=self.metrics,
            )  # fmt: skip
        self.sd.status("starting: opening the targets and listing their snapshots")
        self._prepare(cfg)
        self.metrics.set_sources(source_rpos(cfg, self.state, self._store_listing(cfg)))
        self.state.record_event("daemon_started", {"pid": os.getpid(), "jobs": len(specs)})
        if self.once:
            return self._run_once(cfg, specs)
        return self._run_forever(cfg, specs)

    def _build_admission(self, cfg: LoadedConfig) -> flow.Admission:
        if cfg.config.governor is None:
            return flow.AlwaysAdmit(self.cancel)
        from recoveryd.governor import build_governor

        governor = build_governor(cfg, self.state, self._run_playbook, alert=self._governor_alert)
        governor.start()
        self.governor = governor
        return governor

    def _run_playbook(self, path: Path, level: Callable[[], str]) -> DrillResult:
        """A shedding playbook of the governor, which hands over its own `level`."""
        return self.ops.run_playbook(self.services.config, path, level, stopping=self.stopping)

    def _governor_alert(self, kind: str, data: Mapping[str, Any]) -> None:
        self.notifier.notify(governor_alert(kind, data))

    def _prepare(self, cfg: LoadedConfig) -> None:
        if not cfg.config.sources:
            return
        try:
            self.ops.prepare(cfg)
        except (KeyFileError, ConfigError):
            raise  # an unreadable or exposed key or secret: no job could run; exit 2
        except RecoverydError as exc:  # a store down now may be up at the first slot
            self.state.record_event("targets_not_ready", {"error": exc.message})
            log.warning("targets_not_ready", error=exc.message, note="jobs will retry")
        except Exception as exc:  # noqa: BLE001 - same: never fatal at start-up
            log.warning("targets_not_ready", error=str(exc), note="jobs will retry")

    def _store_listing(self, cfg: LoadedConfig) -> dict[str, datetime]:
        if not cfg.config.sources:
            return {}
        return newest_in_stores(lambda: self.ops.last_copies(cfg), self.metrics.record_copy)

    # --- once ------------------------------------------------------------------------------

    def _run_once(self, cfg: LoadedConfig, specs: list[JobSpec]) -> int:
        if self.fleet is not None:
            start_fleet(self.fleet)
        now = self.clock()
        due = due_once(specs, self.state, self.metrics.sources(), now, cfg.config.daemon.timezone)
        log.info("once", due=[s.id for s in due])
        self._state = "running"

        def interrupt(signum: int, _frame: FrameType | None) -> None:
            """First signal: stop cleanly (nothing half-written); the jobs abort and return."""
            self.signals.signum = signum
            self.stopping.set()
            self.services.cancel_drills.set()
            self.cancel.set()

        previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            with ThreadPoolExecutor(cfg.config.daemon.max_concurrent_jobs) as pool:
                list(pool.map(self._dispatch, due))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.notifier.flush()
        self._anchor()
        self._finish()
        if self.signals.signum is not None:
            return int(ExitCode.INTERRUPTED)
        codes = [o.exit_code for _, o in self.runner.outcomes]
        return max(codes, default=int(ExitCode.OK))

    # --- forever ---------------------------------------------------------------------------

    def _run_forever(self, cfg: LoadedConfig, specs: list[JobSpec]) -> int:
        self._install_signals()
        self.scheduler.apply(specs)
        if self.fleet is not None:
            start_fleet(self.fleet)
        now = self.clock()
        names = [
            n
            for n in catch_up(self.metrics.sources(), now)
            if f"backup:{n}" in self.scheduler.specs
        ]
        for name in names:
            log.info("catch_up", source=name, reason="the newest snapshot is older than the RPO")
            self.state.record_event("catch_up", {"job": f"backup:{name}"}, source=name)
            self.scheduler.run_at(self.scheduler.specs[f"backup:{name}"], tag="catchup")
        self._start_services(cfg)
        self._state = "running"
        self._write_status()
        self.sd.ready(self._status_line())
        log.info("daemon_ready", jobs=len(specs), catch_up=names, pid=os.getpid())
        while not self.signals.stop.is_set():
            self.signals.wake.wait(5.0)
            self.signals.wake.clear()
            if self.signals.reload.is_set():
                self.signals.reload.clear()
                self.reload()
        return self._shutdown()

    def _start_services(self, cfg: LoadedConfig) -> None:
        if cfg.config.metrics is not None:  # first: a taken address fails before any job starts
            self.metrics_server = MetricsServer(
                self.metrics, self.health, cfg.config.metrics.listen
            )
            self.metrics_server.start()
            log.info("metrics_listening", address=self.metrics_server.address)
        self.scheduler.add_internal("monitor", self.monitor, self._monitor_interval(cfg))
        self.scheduler.add_internal("anchor", self._anchor, ANCHOR_INTERVAL)
        self.scheduler.start()
        self.notifier.start()
        self.streams = StreamSupervisor(cfg, self.notifier.notify, self.metrics)
        self.streams.start()
        self.watchdog = Watchdog(self.sd, self._alive)
        self.watchdog.start()

    @staticmethod
    def _monitor_interval(cfg: LoadedConfig) -> float:
        rpos = [s.rpo for s in cfg.config.sources.values() if s.rpo]
        return max(1.0, min(15.0, min(rpos, default=150.0) / 10))

    def _alive(self) -> bool:
        return self.stopping.is_set() or not self.scheduler.stuck()

    def _install_signals(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.signals.signum = signum
            self.signals.stop.set()
            self.signals.wake.set()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.signals.reload.set()
            self.signals.wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # --- reload ----------------------------------------------------------------------------

    def reload(self) -> bool:
        """Apply a new configuration; keep the running one when the new one is invalid."""
        self.sd.reloading()
        old = self.services.config
        try:
            cfg = load_config(self.config_path or str(old.path))
            specs = plan_config(cfg)
            fixed = {"state_dir": state_dir_of(cfg) != state_dir_of(old),
                     "fleet": cfg.config.fleet != old.config.fleet}  # fmt: skip
            for key in (k for k, differs in fixed.items() if differs):
                message = f"{key} cannot change while the daemon runs; restart it instead"
                raise ConfigError(message, key=key)
        except RecoverydError as exc:
            self.state.record_event("config_reload_refused", {"error": exc.message})
            log.error(
                "config_reload_refused", error=exc.message, note="the old configuration runs on"
            )
            self.notifier.notify(Alert("failure", "configuration reload refused", exc.message))
            self._audit("reload", "refused", error=exc.message)
            self.sd.ready(f"reload refused: {exc.message}; {self._status_line()}")
            return False
        before, after = old.config.daemon, cfg.config.daemon
        changed = {
            "max_concurrent_jobs": before.max_concurrent_jobs != after.max_concurrent_jobs,
            "timezone": before.timezone != after.timezone,
        }
        for key in (k for k, differs in changed.items() if differs):
            log.warning("reload_needs_restart", key=f"daemon.{key}", note="kept as it was")
        self.services.config = cfg
        self.scheduler.apply(specs, jitter=cfg.config.daemon.jitter)
        self.notifier.set_channels(cfg.config.notify)
        known = self.metrics.sources()
        self.metrics.set_sources(
            {
                n: SourceRpo(n, s.rpo, known[n].last_snapshot if n in known else None)
                for n, s in cfg.config.sources.items()
            }
        )
        self._prepare(cfg)
        self.metrics_server = restart_server(
            self.metrics_server, old.config.metrics, cfg.config.metrics, self.metrics, self.health
        )
        self.state.record_event("config_reloaded", {"jobs": len(specs)})
        self._audit("reload", "ok")
        log.info("config_reloaded", jobs=len(specs))
        self._write_status()
        self.sd.ready(self._status_line())
        return True

    # --- monitoring ------------------------------------------------------------------------

    def monitor(self) -> None:
        """Periodic: overdue alerts, metrics of the moment, daemon.json, systemd STATUS."""
        if self.fleet is not None:  # first: a member watches the RPO of what it owns
            publish(self.fleet, self.metrics, self.services.config)
        self.overdue.update(self.metrics.sources(), self.clock())
        if self.streams is not None:
            self.streams.check()
        self.metrics.heartbeat_age.set(self.scheduler.heartbeat_age())
        self.metrics.level.set(LEVELS.get(self.admission.level(), 0))
        self._write_status()
        self.sd.status(self._status_line())

    def health(self) -> Health:
        reasons = [f"source {n} is overdue past its RPO" for n in self.metrics.overdue()]
        if self.scheduler.stuck():
            reasons.append(
                f"the scheduler loop is stuck (no heartbeat for "
                f"{self.scheduler.heartbeat_age():.0f}s)"
            )
        return Health(not reasons, tuple(reasons))

    def _snapshot(self) -> DaemonSnapshot:
        return DaemonSnapshot(
            state=self._state,
            started=self.started,
            now=self.clock(),
            config=str(self.services.config.path),
            running=self.runner.running(),
            level=self.admission.level(),
            next_runs=self.scheduler.next_runs(),
            metrics=self.metrics_server.address if self.metrics_server else None,
            jobs=len(self.scheduler.specs),
        )

    def _status_line(self) -> str:
        return status_line(self._snapshot())

    def _write_status(self) -> None:
        doc = status_document(self._snapshot())
        if self.governor is not None:
            doc["governor"] = self.governor.status().to_json()
        if self.fleet is not None:
            doc["fleet"] = self.fleet.view().to_json()
        try:
            self.status_file.write(doc)
        except OSError as exc:
            log.error("status_file_failed", path=str(self.status_file.path), error=str(exc))

    def _audit(self, command: str, result: str, *, error: str | None = None) -> None:
        """An audit record of the daemon's own operations (reloads)."""
        try:
            self.services.audit.record(
                origin="daemon",
                command=command,
                args=[str(self.services.config.path)],
                result=result,
                error=error,
            )
        except OSError as exc:
            log.error("audit_write_failed", command=command, error=str(exc))

    def _spool_dropped(self, count: int) -> None:
        self.metrics.notify_dropped.inc(count)
        self.state.record_event("notify_dropped", {"count": count})

    def _anchor(self) -> None:
        """The heads of the local logs into the stores: every ANCHOR_INTERVAL and at the end."""
        try:
            self.ops.anchor(self.services.config)
        except Exception as exc:  # noqa: BLE001 - anchoring never stops the daemon
            log.warning("anchor_failed", error=str(exc))

    def _dispatch(self, spec: JobSpec) -> None:
        self.runner(spec)

    # --- stop ------------------------------------------------------------------------------

    def _shutdown(self) -> int:
        signame = signal.Signals(self.signals.signum).name if self.signals.signum else "stop"
        self._state = "stopping"
        self.sd.stopping(f"stopping on {signame}")
        log.info("daemon_stopping", signal=signame, running=sorted(self.runner.running()))
        self.stopping.set()
        self.services.cancel_drills.set()  # running drills roll back now
        self.scheduler.pause()
        grace = self.services.config.config.daemon.shutdown_grace
        if not self.runner.wait_idle(grace):
            log.warning("shutdown_cancelling", running=sorted(self.runner.running()), grace=grace)
            self.cancel.set()
            if self.governor is not None:
                self.governor.stop(timeout=5.0)
            if not self.runner.wait_idle(ABORT_WAIT):
                log.error("shutdown_jobs_left", running=sorted(self.runner.running()))
        self.scheduler.shutdown()
        if self.streams is not None:
            self.streams.close()
        self.watchdog.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.notifier.stop()
        self._anchor()
        self._finish()
        log.info("daemon_stopped", signal=signame)
        return int(ExitCode.OK)

    def _finish(self) -> None:
        if self.governor is not None:
            self.governor.stop(timeout=5.0)
        if self.fleet is not None:
            self.fleet.stop()
        self._state = "stopped"
        self._write_status()
        self.state.record_event("daemon_stopped", {"pid": os.getpid()})
        self.state.close()
        self.sd.close()
