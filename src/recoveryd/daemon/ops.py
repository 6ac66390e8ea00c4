"""The daemon's operations (`jobs.Operations`) backed by `recoveryd.app` and the drill runner.

Plain imports: the daemon is the composition root above both, and mypy and
import-linter see every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from recoveryd import app, flow
from recoveryd.app.anchors import write_anchors
from recoveryd.app.drillops import AppSnapshotOperations
from recoveryd.app.reporting import report_writer
from recoveryd.config import LoadedConfig
from recoveryd.daemon.jobs import Outcome
from recoveryd.daemon.schedule import JobSpec
from recoveryd.drills.api import DrillResult, LevelSource, run_playbook, run_restore_drill
from recoveryd.observe import get_logger

log = get_logger("recoveryd.daemon.jobs")


def drill_outcome(result: DrillResult) -> Outcome:
    """A DrillResult as a job outcome: passed with objectives met is ok."""
    details = {
        "run_id": result.run_id,
        "status": result.status,
        "rto_seconds": result.rto_seconds,
        "rpo_seconds": result.rpo_seconds,
        "objectives_met": result.objectives_met,
        "report": str(result.report) if result.report else None,
    }
    if result.status == "passed" and result.objectives_met:
        return Outcome("ok", details=details)
    if result.status in ("aborted", "interrupted"):  # a stop condition; the daemon stopping
        error = f"drill {result.run_id} was {result.status}"
        return Outcome("aborted", error=error, details=details)
    if result.status == "passed":
        return Outcome(
            "objective_missed",
            error=f"drill {result.run_id} missed an objective",
            details=details,
        )
    return Outcome("failed", error=f"drill {result.run_id} failed", details=details)


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

    def __init__(self) -> None:
        self.snapshots = AppSnapshotOperations()

    def backup(
        self,
        cfg: LoadedConfig,
        source: str,
        *,
        gate: flow.Gate,
        cancel: threading.Event,
        labels: Mapping[str, str] | None = None,
    ) -> Outcome:
        progress = ProgressLog(f"backup:{source}")
        done = app.write_source(cfg, source, gate, progress=progress, cancel=cancel, labels=labels)
        missing = done.result.missing_targets
        return Outcome(
            "degraded" if missing else "ok",
            bytes_read=done.result.size,
            bytes_stored=done.bytes_stored,
            snapshot_ids=(done.result.id,),
            error="; ".join(f"missing on {m.target}: {m.error}" for m in missing) or None,
            details={**done.details(), "targets": sorted(done.stored_by_target)},
        )

    def slot_taken(self, cfg: LoadedConfig, source: str, slot: str) -> datetime | None:
        return app.slot_taken(cfg, source, slot)

    def verify(self, cfg: LoadedConfig, source: str, read_data: bool | str) -> Outcome:
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
        return Outcome("ok", details={"report": app.prune(cfg).to_json()})

    def drill(self, cfg: LoadedConfig, spec: JobSpec, *, cancel: threading.Event) -> Outcome:
        playbook = cfg.resolve_path(spec.playbook or "")
        result = run_playbook(
            cfg,
            playbook,
            yes=True,
            vars=dict(spec.vars),
            cancel=cancel,
            report=report_writer(cfg),
            ops=self.snapshots,
        )
        return drill_outcome(result)

    def restore_drill(self, cfg: LoadedConfig, source: str, *, cancel: threading.Event) -> Outcome:
        result = run_restore_drill(
            cfg, source, cancel=cancel, report=report_writer(cfg), ops=self.snapshots
        )
        return drill_outcome(result)

    def run_playbook(
        self,
        cfg: LoadedConfig,
        playbook: Path,
        level: LevelSource,
        *,
        stopping: threading.Event | None = None,
    ) -> DrillResult:
        """For the load governor's on_enter/on_exit actions: `level` is the governor's own;
        `stopping` (the daemon's) interrupts the run, a wait for approvals included."""
        return run_playbook(
            cfg,
            playbook,
            yes=True,
            cancel=stopping,
            report=report_writer(cfg),
            ops=self.snapshots,
            level=level,
        )

    def prepare(self, cfg: LoadedConfig) -> None:
        """Check that every target the sources write to holds a repository; the first that
        does not is reported (RepositoryMissingError: `recoveryd init` creates it)."""
        used = sorted({t for s in cfg.config.sources.values() for t in s.targets})
        for target in used:
            repo = app.open_repository(cfg, target)
            repo.store.close()

    def anchor(self, cfg: LoadedConfig) -> None:
        """Anchor the heads of the audit log, journals and incident records in the stores."""
        write_anchors(cfg)

    def replicate(self, cfg: LoadedConfig) -> Outcome:
        """Copy snapshots to the targets of their source that lack them (after a degraded
        backup); a target still unreachable fails the job, to be retried at its next slot."""
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
        newest: dict[tuple[str, str], datetime] = {}
        for snap in app.list_snapshots(cfg, on_error=lambda _target, _exc: None):
            for target in snap.targets:
                key = (snap.source, target)
                if key not in newest or snap.time > newest[key]:
                    newest[key] = snap.time
        return newest
