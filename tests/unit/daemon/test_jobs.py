"""A job end to end with injected operations: admission, locks, records, alerts."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recoveryd.audit import AuditLog
from recoveryd.daemon.jobs import JobRunner, JobServices, Outcome
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Notifier
from recoveryd.daemon.rpo import SourceRpo
from recoveryd.daemon.schedule import JobSpec
from recoveryd.errors import ForceRequiredError
from recoveryd.state import StateStore
from tests.fixtures.web import poll
from tests.unit.daemon.helpers import FakeOps, ScriptedAdmission, write_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BACKUP = JobSpec("backup:pop", "backup", "every 1h", "k", source="pop", priority="normal")
PRUNE = JobSpec("prune", "prune", "every 1h", "k")


@pytest.fixture
def services(tmp_path: Path) -> JobServices:
    cfg = write_config(
        tmp_path,
        "sources:\n  pop: {kind: sqlite, path: /tmp/p.db, targets: [local], rpo: 1h}\n"
        "notify:\n  - {kind: webhook, url: 'http://127.0.0.1:9/x',"
        " on: [failure, recovery, under_replicated]}\n",
    )
    state_dir = tmp_path / "state"
    metrics = DaemonMetrics(lambda: NOW)
    metrics.set_sources({"pop": SourceRpo("pop", 3600, NOW - timedelta(minutes=30))})
    deferred: list[tuple[JobSpec, datetime]] = []
    svc = JobServices(
        config=cfg,
        state=StateStore(state_dir),
        audit=AuditLog(state_dir),
        metrics=metrics,
        notifier=Notifier(cfg.config.notify, state_dir / "spool"),
        admission=ScriptedAdmission(),
        ops=FakeOps(),
        cancel=threading.Event(),
        stopping=threading.Event(),
        defer=lambda spec, when: deferred.append((spec, when)),
        clock=lambda: NOW,
    )
    svc.deferred = deferred  # type: ignore[attr-defined]
    return svc


def test_successful_backup_is_recorded_everywhere(services: JobServices) -> None:
    """A run lands in the state store, the metrics, and the audit log (user, command, result)."""
    JobRunner(services)(BACKUP)
    run = services.state.runs(kind="daemon_backup", source="pop")[0]
    assert (run.result, run.bytes_read, run.snapshot_id) == ("ok", 100, "snap-pop")
    assert services.metrics.sources()["pop"].last_snapshot == NOW
    rec = services.audit.records()[-1]
    assert (rec["origin"], rec["command"], rec["args"], rec["result"]) == (
        "daemon",
        "backup",
        ["pop"],
        "ok",
    )
    assert services.audit.verify().ok
    assert services.notifier.pending() == []  # nothing to say about a success


def test_failure_alerts_once_and_recovery_follows(services: JobServices) -> None:
    """A failed job spools a failure alert (secrets redacted); its next success a recovery."""
    ops: FakeOps = services.ops  # type: ignore[assignment]
    runner = JobRunner(services)
    ops.fail.add("backup:pop")
    runner(BACKUP)
    runner(BACKUP)  # failing again: no second alert, no storm every slot
    spooled = [p.read_text() for p in services.notifier.pending()]
    assert len(spooled) == 1 and '"failure"' in spooled[0]
    assert services.metrics.failures.labels("backup", "pop")._value.get() == 2
    assert "hunter22" not in spooled[0]
    run = services.state.runs(kind="daemon_backup", source="pop")[0]
    assert run.result == "failed" and "hunter22" not in (run.error or "")
    ops.fail.clear()
    runner(BACKUP)
    kinds = [json.loads(p.read_text())["alert"]["kind"] for p in services.notifier.pending()]
    assert kinds == ["failure", "recovery"]


def test_wait_answer_defers_the_job_and_asks_with_rpo_urgency(services: JobServices) -> None:
    """Every job asks admission first; "wait" records a deferral and schedules a retry."""
    adm: ScriptedAdmission = services.admission  # type: ignore[assignment]
    adm.answer = "wait"
    services.retry_after = 60.0
    JobRunner(services)(BACKUP)
    assert services.ops.calls == []  # type: ignore[attr-defined]
    assert adm.asked == [("normal", "backup:pop", False)]
    assert [e.kind for e in services.state.events(kinds=("job_deferred",))] == ["job_deferred"]
    assert services.deferred == [(BACKUP, NOW + timedelta(seconds=60))]  # type: ignore[attr-defined]
    services.retry_after = 3600.0  # waiting that long would break the 1h RPO
    JobRunner(services)(BACKUP)
    assert adm.asked[-1] == ("normal", "backup:pop", True)


def test_backup_and_prune_of_a_source_never_overlap(services: JobServices) -> None:
    """The prune waits for the running backup of a source to finish before it starts."""
    ops: FakeOps = services.ops  # type: ignore[assignment]
    ops.block.clear()
    runner = JobRunner(services)
    t1 = threading.Thread(target=runner, args=(BACKUP,))
    t1.start()
    assert ops.entered.wait(5)
    t2 = threading.Thread(target=runner, args=(PRUNE,))
    t2.start()
    assert poll(lambda: "prune" in runner.running())
    assert ops.calls == [("backup", "pop")]  # prune is waiting for the lock
    ops.block.set()
    t1.join(5)
    t2.join(5)
    assert ops.calls == [("backup", "pop"), ("prune", None)]


def test_one_instance_per_job(services: JobServices) -> None:
    """A job still running when its next slot (or a catch-up) fires is not started twice."""
    ops: FakeOps = services.ops  # type: ignore[assignment]
    ops.block.clear()
    runner = JobRunner(services)
    t1 = threading.Thread(target=runner, args=(BACKUP,))
    t1.start()
    assert ops.entered.wait(5)
    runner(BACKUP)  # returns at once
    ops.block.set()
    t1.join(5)
    assert ops.calls == [("backup", "pop")]


def test_cancel_while_waiting_for_a_lock_aborts_cleanly(services: JobServices) -> None:
    """Shutdown while a job waits for a source lock ends it as aborted, without running it."""
    runner = JobRunner(services)
    with runner.locks.hold(["pop"], threading.Event()):
        services.cancel.set()
        runner(BACKUP)
    assert services.ops.calls == []  # type: ignore[attr-defined]
    assert services.state.runs(kind="daemon_backup")[0].result == "aborted"


def test_a_prune_needing_force_is_refused_and_alerts_not_retried(services: JobServices) -> None:
    """A prune that would forget more than half of a source's snapshots is refused in the
    daemon (result "refused", exit 5) with a failure alert naming why; it is not deferred
    for a retry, since only an operator's --force can allow it."""
    ops: FakeOps = services.ops  # type: ignore[assignment]
    ops.raises["prune"] = ForceRequiredError(
        "prune: target local: the retention of pop would forget 3 of its 4 snapshots"
    )
    runner = JobRunner(services)
    runner(PRUNE)
    run = services.state.runs(kind="daemon_prune")[0]
    assert run.result == "refused"
    assert runner.outcomes[-1][1].exit_code == 5
    assert services.deferred == []  # type: ignore[attr-defined]
    (alert,) = [json.loads(p.read_text())["alert"] for p in services.notifier.pending()]
    assert alert["kind"] == "failure" and "forget 3 of its 4" in alert["text"]


def test_a_degraded_backup_alerts_under_replicated(services: JobServices) -> None:
    """A backup that missed a target counts as a snapshot for the RPO but sends an
    under_replicated alert naming the missing target."""
    ops: FakeOps = services.ops  # type: ignore[assignment]
    ops.outcomes["backup:pop"] = Outcome(
        "degraded",
        snapshot_ids=("s1",),
        error="missing on offsite: cannot reach the store",
        details={"targets": ["local"], "missing_targets": [{"target": "offsite"}]},
    )
    runner = JobRunner(services)
    runner(BACKUP)
    assert services.metrics.sources()["pop"].last_snapshot == NOW
    assert runner.outcomes[-1][1].exit_code == 6
    (alert,) = [json.loads(p.read_text())["alert"] for p in services.notifier.pending()]
    assert alert["kind"] == "under_replicated" and "offsite" in alert["text"]
