"""A backup the daemon starts is one job: one admission decision and one run record."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recoveryd import app
from recoveryd.audit import AuditLog
from recoveryd.daemon.jobs import JobRunner, JobServices
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Notifier
from recoveryd.daemon.ops import AppOperations
from recoveryd.daemon.rpo import SourceRpo
from recoveryd.daemon.schedule import JobSpec
from recoveryd.state import StateStore
from tests.unit.daemon.helpers import ScriptedAdmission, write_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BACKUP = JobSpec("backup:pop", "backup", "every 1h", "k", source="pop", priority="normal")


def _services(tmp_path: Path, admission: ScriptedAdmission, last: datetime) -> JobServices:
    with sqlite3.connect(tmp_path / "p.db") as conn:
        conn.execute("create table t(x)")
        conn.execute("insert into t values (1)")
    cfg = write_config(
        tmp_path, f"sources:\n  pop: {{kind: sqlite, path: {tmp_path / 'p.db'}, targets: [local],"
        " rpo: 1h}\n",
    )  # fmt: skip
    app.generate_key(cfg)
    app.init_repositories(cfg)
    state_dir = tmp_path / "state"
    metrics = DaemonMetrics(lambda: NOW)
    metrics.set_sources({"pop": SourceRpo("pop", 3600, last)})
    return JobServices(
        config=cfg,
        state=StateStore(state_dir),
        audit=AuditLog(state_dir),
        metrics=metrics,
        notifier=Notifier(cfg.config.notify, state_dir / "spool"),
        admission=admission,
        ops=AppOperations(),
        cancel=threading.Event(),
        stopping=threading.Event(),
        defer=lambda spec, when: None,
        clock=lambda: NOW,
    )


def test_a_daemon_backup_is_admitted_once_and_recorded_once(tmp_path: Path) -> None:
    """The job asks the admission once and leaves one run in the state store, which holds
    what the backup wrote (snapshot, bytes, targets) and the admission's answer."""
    admission = ScriptedAdmission("run")
    services = _services(tmp_path, admission, NOW - timedelta(minutes=10))
    JobRunner(services)(BACKUP)
    assert admission.asked == [("normal", "backup:pop", False)]
    runs = [r for r in services.state.runs(source="pop") if r.kind.endswith("backup")]
    assert len(runs) == 1, runs
    (run,) = runs
    (snap,) = app.list_snapshots(services.config)
    assert (run.result, run.snapshot_id) == ("ok", snap.id)
    assert run.bytes_read == snap.size and run.bytes_stored > 0
    assert run.details["admission"] == "run"
    assert set(run.details["targets"]) == {"local"}


def test_due_soon_is_one_rule(tmp_path: Path) -> None:
    """A source whose RPO would break before the daemon's retry is due soon; the one
    admission question says so (and the job runs throttled instead of waiting)."""
    admission = ScriptedAdmission("throttled")
    services = _services(tmp_path, admission, NOW - timedelta(minutes=59, seconds=30))
    JobRunner(services)(BACKUP)
    assert admission.asked == [("normal", "backup:pop", True)]
