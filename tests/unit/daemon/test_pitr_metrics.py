"""The point-in-time gauges of `/metrics`: the recovery window, the archive lag computed
at scrape time, the log stream, and the server's archiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recoveryd.daemon.metrics import DaemonMetrics, PitrGauges

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def _samples(metrics: DaemonMetrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        f"{s.name}{{{s.labels['source']}}}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "source" in s.labels
        and s.name.startswith(("recoveryd_pitr", "recoveryd_wal", "recoveryd_pg"))
    }


def test_window_lag_and_stream_are_exported_per_source() -> None:
    """The window's ends are Unix times; the lag is the seconds from the newest stored log
    file to the scrape (it grows between two scrapes without a new check)."""
    now = [T0 + timedelta(minutes=10)]
    metrics = DaemonMetrics(clock=lambda: now[0])
    newest = T0 + timedelta(minutes=9)
    metrics.set_pitr("registry", PitrGauges(T0, newest, newest))
    metrics.set_pitr("ledger", PitrGauges(None, None, newest))
    metrics.set_stream_up("registry", True)
    metrics.set_stream_up("ledger", False)
    got = _samples(metrics)
    assert got["recoveryd_pitr_window_start_timestamp_seconds{registry}"] == T0.timestamp()
    assert got["recoveryd_pitr_window_end_timestamp_seconds{registry}"] == newest.timestamp()
    assert got["recoveryd_wal_archive_lag_seconds{registry}"] == 60.0
    assert got["recoveryd_wal_stream_up{registry}"] == 1.0
    assert got["recoveryd_wal_stream_up{ledger}"] == 0.0
    assert "recoveryd_pitr_window_start_timestamp_seconds{ledger}" not in got
    now[0] += timedelta(seconds=30)
    assert _samples(metrics)["recoveryd_wal_archive_lag_seconds{registry}"] == 90.0


def test_the_archiver_gauges_follow_the_last_reading() -> None:
    """failed_count and the failing flag are what the watch last read from the server."""
    metrics = DaemonMetrics(clock=lambda: T0)
    metrics.set_archiver("registry", failed=3, failing=True)
    assert _samples(metrics)["recoveryd_pg_archiver_failing{registry}"] == 1.0
    metrics.set_archiver("registry", failed=3, failing=False)
    got = _samples(metrics)
    assert got["recoveryd_pg_archiver_failing{registry}"] == 0.0
    assert got["recoveryd_pg_archiver_failed_count{registry}"] == 3.0


def test_an_unstreamed_source_without_archive_exports_no_lag() -> None:
    """Before anything is archived there is no lag sample (not a misleading 0), and a
    source that is not streamed has no stream gauge."""
    metrics = DaemonMetrics(clock=lambda: T0)
    metrics.set_pitr("registry", PitrGauges(None, None, None))
    assert _samples(metrics) == {}
