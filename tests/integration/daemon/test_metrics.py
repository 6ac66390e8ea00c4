"""`/metrics` and `/healthz` served over real HTTP on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from recoveryd.daemon.metrics import DaemonMetrics, Health, MetricsServer
from recoveryd.daemon.rpo import SourceRpo

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - http on loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_health() -> None:
    """Per-source age and overdue flags, job counters and levels are exported; /healthz is 503
    with the reason while a source is past its RPO, 200 once it is not."""
    m = DaemonMetrics(lambda: NOW)
    m.set_sources(
        {
            "pop": SourceRpo("pop", 3600, NOW - timedelta(minutes=30)),
            "geo": SourceRpo("geo", 600, NOW - timedelta(hours=2)),
        }
    )
    m.jobs.labels("backup", "ok").inc()
    m.bytes_read.labels("pop").inc(1234)
    m.deferred.labels("verify").inc()
    m.level.set(1)

    def health() -> Health:
        late = m.overdue()
        return Health(not late, tuple(f"source {n} is overdue" for n in late))

    server = MetricsServer(m, health, "127.0.0.1:0")
    server.start()
    base = f"http://{server.address}"
    try:
        status, text = _get(base + "/metrics")
        assert status == 200
        assert 'recoveryd_last_success_age_seconds{source="pop"} 1800.0' in text
        assert 'recoveryd_source_overdue{source="geo"} 1.0' in text
        assert "recoveryd_overdue_sources 1.0" in text
        assert 'recoveryd_jobs_total{kind="backup",result="ok"} 1.0' in text
        assert 'recoveryd_bytes_read_total{source="pop"} 1234.0' in text
        assert 'recoveryd_jobs_deferred_total{kind="verify"} 1.0' in text
        assert "recoveryd_pressure_level 1.0" in text
        assert "recoveryd_running_jobs 0.0" in text
        status, text = _get(base + "/healthz")
        assert status == 503
        assert json.loads(text)["reasons"] == ["source geo is overdue"]
        m.record_success("geo", NOW)
        status, _ = _get(base + "/healthz")
        assert status == 200
    finally:
        server.stop()
