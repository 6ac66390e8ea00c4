"""The daemon's seam to the product's operations: `recoveryd.app` and `recoveryd.drills.api`.

Both are imported when a job runs, not before: an installation without the
drill runner still schedules backups, and reports drill jobs as unavailable
(`UnavailableError`), never silently skipping them.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from recoveryd import flow
from recoveryd.app.reporting import report_writer
from recoveryd.config import LoadedConfig
from recoveryd.daemon.jobs import Outcome, UnavailableError
from recoveryd.daemon.schedule import JobSpec
from recoveryd.observe import get_logger

DRILLS_API = "recoveryd.drills.api"
log = get_logger("recoveryd.daemon.jobs")


def _module(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UnavailableError(
            f"{what} is not available in this installation ({name} cannot be imported: {exc}); "
            "upgrade recoveryd or remove the job from the configuration"
        ) from exc


def drills_available(function: str = "run_playbook") -> bool:
    """True when `recoveryd.drills.api` exists and offers `function`."""
    try:
        return hasattr(importlib.import_module(DRILLS_API), function)
    except ImportError:
        return False


def _drill_function(name: str, what: str) -> Any:
    function = getattr(_module(DRILLS_API, what), name, None)
    if function is None:
        raise UnavailableError(
            f"{what} is not available in this installation ({DRILLS_API}.{name} is missing); "
            "upgrade recoveryd or remove the job from the configuration"
        )
    return function


def app_available() -> bool:
    try:
        return importlib.util.find_spec("recoveryd.app") is not None and hasattr(
            importlib.import_module("recoveryd.app"), "backup"
        )
    except ImportError:
        return False


def drill_outcome(result: Any) -> Outcome:
    """A DrillResult as a job outcome: passed with objectives met is ok."""
    status = str(getattr(result, "status", "failed"))
    met = bool(getattr(result, "objectives_met", False))
    details = {
        "run_id": getattr(result, "run_id", None),
        "status": status,
        "rto_seconds": getattr(result, "rto_seconds", None),
        "rpo_seconds": getattr(result, "rpo_seconds", None),
        "objectives_met": met,
        "report": str(getattr(result, "report", "") or "") or None,
    }
    if status == "passed" and met:
        return Outcome("ok", details=details)
    if status in ("aborted", "interrupted"):  # a stop condition; the daemon stopping
        error = f"drill {details['run_id']} was {status}"
        return Outcome("aborted", error=error, details=details)
    if status == "passed":
        return Outcome(
            "objective_missed",
            error=f"drill {details['run_id']} missed an objective",
            details=details,
        )
    return Outcome("failed", error=f"drill {details['run_id']} failed", details=details)


class ProgressLog:
    """A progress callback that logs one `progress` event every `every` seconds."""

    def __init__(self, job: str, every: float = 30.0) -> None:
        self.job = job
        self.every = every
        self._next = time.monotonic() + every

    def __call__(self, progress: flow.Progress) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        log.info(
            "progress",
            job=self.job,
            read_bytes=progress.read_bytes,
            stored_bytes=progress.stored_bytes,
            total=progress.total,
            chunks=progress.chunks,
        )


class AppOperations:
    """Operations backed by `recoveryd.app` and `recoveryd.drills.api`."""

    def backup(
        self, cfg: LoadedConfig, source: str, *, admission: flow.Admission, cancel: threading.Event
    ) -> Outcome:
        app = _module("recoveryd.app", "backup")
        progress = ProgressLog(f"backup:{source}")
        results = app.backup(cfg, [source], admission=admission, cancel=cancel, progress=progress)
        missing = [m for r in results for m in r.missing_targets]
        return Outcome(
            "degraded" if missing else "ok",
            bytes_read=sum(int(r.size) for r in results),
            bytes_stored=sum(int(r.stored_size) for r in results),
            snapshot_ids=tuple(str(r.id) for r in results),
            error="; ".join(f"missing on {m.target}: {m.error}" for m in missing) or None,
            details={
                "targets": sorted({t for r in results for t in r.targets}),
                "missing_targets": [m.to_json() for m in missing],
            },
        )

    def verify(self, cfg: LoadedConfig, source: str, read_data: bool | str) -> Outcome:
        app = _module("recoveryd.app", "verify")
        ids = [s.id for s in app.list_snapshots(cfg, source=source)]
        if not ids:
            return Outcome("failed", error=f"verify {source}: there is no snapshot to verify yet")
        report = app.verify(cfg, ids, read_data=read_data)
        details = {"snapshots": len(ids), "objects_checked": report.objects_checked}
        if report.ok:
            return Outcome("ok", bytes_read=report.bytes_read, details=details)
        first = report.problems[0]
        return Outcome(
            "integrity",
            bytes_read=report.bytes_read,
            error=f"{len(report.problems)} problem(s); first: {first.snapshot} {first.obj}: "
            f"{first.message}",
            details=details,
        )

    def prune(self, cfg: LoadedConfig) -> Outcome:
        app = _module("recoveryd.app", "prune")
        report = app.prune(cfg)
        to_json = getattr(report, "to_json", None)
        return Outcome("ok", details={"report": to_json() if callable(to_json) else str(report)})

    def drill(self, cfg: LoadedConfig, spec: JobSpec, *, cancel: threading.Event) -> Outcome:
        run = _drill_function("run_playbook", "the drill runner")
        playbook = cfg.resolve_path(spec.playbook or "")
        result = run(
            cfg, playbook, yes=True, vars=dict(spec.vars), cancel=cancel, report=report_writer(cfg)
        )
        return drill_outcome(result)

    def restore_drill(self, cfg: LoadedConfig, source: str, *, cancel: threading.Event) -> Outcome:
        run = _drill_function("run_restore_drill", "the restore drill runner")
        return drill_outcome(run(cfg, source, cancel=cancel, report=report_writer(cfg)))

    def run_playbook(self, cfg: LoadedConfig, playbook: Path) -> object:
        """For the load governor's on_enter/on_exit actions."""
        run = _drill_function("run_playbook", "the drill runner")
        return run(cfg, playbook, yes=True, report=report_writer(cfg))

    def prepare(self, cfg: LoadedConfig) -> None:
        """Check that every target the sources write to holds a repository; the first that
        does not is reported (RepositoryMissingError: `recoveryd init` creates it)."""
        app = _module("recoveryd.app", "backup")
        used = sorted({t for s in cfg.config.sources.values() for t in s.targets})
        for target in used:
            repo = app.open_repository(cfg, target)
            repo.store.close()

    def replicate(self, cfg: LoadedConfig) -> Outcome:
        """Copy snapshots to the targets of their source that lack them (after a degraded
        backup); a target still unreachable fails the job, to be retried at its next slot."""
        app = _module("recoveryd.app", "replication")
        report = app.replicate(cfg)
        details = report.to_json()
        if report.unreachable:
            error = "; ".join(f"{t}: {e}" for t, e in sorted(report.unreachable.items()))
            return Outcome("failed", error=f"replicas still missing: {error}", details=details)
        return Outcome("ok", snapshot_ids=tuple(c.snapshot for c in report.copied), details=details)

    def last_snapshots(self, cfg: LoadedConfig) -> dict[str, datetime]:
        """Newest snapshot end time per source, from the stores (the source of truth)."""
        newest: dict[str, datetime] = {}
        for (source, _), at in self.last_copies(cfg).items():
            if source not in newest or at > newest[source]:
                newest[source] = at
        return newest

    def last_copies(self, cfg: LoadedConfig) -> dict[tuple[str, str], datetime]:
        """(source, target) -> newest snapshot end time there, from the stores that answer."""
        app = _module("recoveryd.app", "listing snapshots")
        newest: dict[tuple[str, str], datetime] = {}
        for snap in app.list_snapshots(cfg, on_error=lambda _target, _exc: None):
            for target in snap.targets:
                key = (snap.source, target)
                if key not in newest or snap.time > newest[key]:
                    newest[key] = snap.time
        return newest
