"""The daemon's point-in-time watch against a real PostgreSQL 15 archiving with
`recoveryd wal-push`: the recovery window and the archive lag reach the metrics, and a
failing `archive_command` (the store unreachable by the `postgres` user) raises one
alert through the notifier's webhook, then one recovery alert once it archives again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recoveryd.config import WebhookNotify, load_config
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Notifier
from recoveryd.daemon.pitrwatch import PitrWatch
from tests.fixtures.pgarchive import Archive, archived_through, switch, temporary_archive
from tests.fixtures.web import HttpRecorder, poll
from tests.forkcli import run_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def archive() -> Iterator[Archive]:
    with temporary_archive("recoveryd-archiver-") as a:
        yield a


def _samples(metrics: DaemonMetrics) -> dict[str, float]:
    """`name{source}` -> value of every sample labelled with a source."""
    text = generate_latest(metrics.registry).decode()
    return {
        f"{s.name}{{{s.labels['source']}}}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "source" in s.labels
    }


def _failed_count(a: Archive) -> int:
    ((count,),) = a.sql(a.port, "select failed_count from pg_stat_archiver")
    return int(str(count))


def test_a_failing_archive_command_alerts_once_then_recovers(
    archive: Archive, http_recorder: HttpRecorder
) -> None:
    """While the server's archive_command fails, one check of the watch sends one failure
    alert naming the source and the segment, and the metrics show the archiver failing;
    a second check sends nothing more. Once a segment is archived again, one recovery
    alert follows and the failing gauge drops to 0."""
    a = archive
    cfg = load_config(a.config)
    url = http_recorder.url + "/hook"
    hook = WebhookNotify(kind="webhook", url=url, on=["failure", "recovery"])
    notifier = Notifier([hook], a.root / "spool")
    metrics = DaemonMetrics()
    watch = PitrWatch(cfg, metrics, notifier.notify)
    mode = a.store.stat().st_mode & 0o777
    a.store.chmod(0)  # wal-push runs as postgres, which can no longer reach the store
    try:
        a.sql(a.port, "create table t as select generate_series(1, 1000) g")
        stuck = switch(a)
        assert poll(lambda: _failed_count(a) > 0, timeout=120)
        watch.check()
        watch.check()
        notifier.flush()
        (alert,) = http_recorder.wait_for(1, "/hook")
        body = alert.json()
        assert (body["event"], body["source"]) == ("failure", "registry")
        assert "archive_command fails" in body["text"] and stuck in body["text"]
        assert _samples(metrics)["recoveryd_pg_archiver_failing{registry}"] == 1.0
        assert _samples(metrics)["recoveryd_pg_archiver_failed_count{registry}"] >= 1
    finally:
        a.store.chmod(mode)
    archived_through(a, switch(a))
    watch.check()
    notifier.flush()
    first, second = http_recorder.wait_for(2, "/hook")
    assert second.json()["event"] == "recovery"
    assert first.json()["event"] == "failure"
    assert _samples(metrics)["recoveryd_pg_archiver_failing{registry}"] == 0.0


def test_the_recovery_window_and_archive_lag_reach_the_metrics(archive: Archive) -> None:
    """After a base backup and an archived segment, the window's start is the end of the
    base backup, its end the time the newest segment was stored, the lag is the seconds
    since then; a source that is not streamed exports no stream gauge; no alert."""
    a = archive
    cli = [str(a.exe), "--config", str(a.config)]
    done = run_argv([*cli, "backup", "registry"])
    assert done.returncode == 0, done.stderr
    archived_through(a, switch(a))
    alerts: list[object] = []
    now = datetime.now(UTC)
    metrics = DaemonMetrics(clock=lambda: now)
    PitrWatch(load_config(a.config), metrics, alerts.append).check()
    got = _samples(metrics)
    start = got["recoveryd_pitr_window_start_timestamp_seconds{registry}"]
    end = got["recoveryd_pitr_window_end_timestamp_seconds{registry}"]
    assert start <= end <= now.timestamp() + 1
    assert got["recoveryd_wal_archive_lag_seconds{registry}"] == pytest.approx(
        max(0.0, now.timestamp() - end), abs=0.01
    )
    assert "recoveryd_wal_stream_up{registry}" not in got
    assert got["recoveryd_pg_archiver_failing{registry}"] == 0.0
    assert alerts == []
