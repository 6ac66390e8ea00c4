"""The daemon's `/healthz` answer: failing when a source is past its RPO or the scheduler
loop is stuck, with the reason, so a monitor pages for either (issue 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.rpo import SourceRpo
from recoveryd.daemon.schedule import Scheduler
from recoveryd.daemon.service import Daemon
from tests.unit.daemon.helpers import FakeOps, write_config

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


def test_health_fails_when_the_scheduler_is_stuck_or_a_source_is_overdue(tmp_path: Path) -> None:
    """Healthy while sources are within their RPO and the loop turns; unhealthy, naming the
    cause, once the loop missed its heartbeats, and naming the source once one is overdue."""
    cfg = write_config(tmp_path)
    daemon = Daemon(str(cfg.path), ops=FakeOps(), environ={}, clock=lambda: NOW)
    tick = [100.0]
    daemon.metrics = DaemonMetrics(lambda: NOW)
    daemon.metrics.set_sources({"pop": SourceRpo("pop", 3600, NOW - timedelta(minutes=30))})
    daemon.scheduler = Scheduler(
        lambda spec: None, max_concurrent=1, heartbeat_interval=1.0, monotonic=lambda: tick[0]
    )
    assert daemon.health().ok

    tick[0] += 60.0  # no heartbeat for a minute
    stuck = daemon.health()
    assert not stuck.ok
    assert any("scheduler loop is stuck" in r for r in stuck.reasons)

    tick[0] -= 60.0
    daemon.metrics.set_sources({"pop": SourceRpo("pop", 3600, NOW - timedelta(hours=2))})
    late = daemon.health()
    assert not late.ok
    assert late.reasons == ("source pop is overdue past its RPO",)
