"""The daemon's log stream supervisor: lag alerts against the source's RPO and the
stream gauge. The streamers are real but not started (no server is needed to judge a
stream that stored nothing for a while: its state says when it last stored a file)."""

from __future__ import annotations

import time
from pathlib import Path

from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Alert
from recoveryd.daemon.streams import StreamSupervisor, streamed_sources
from tests.unit.daemon.helpers import write_config

SOURCES = """\
sources:
  registry: {kind: postgresql, dsn: "host=127.0.0.1 dbname=registry", rpo: 5m,
             wal: {stream: true}, targets: [local]}
  ledger: {kind: mysql, dsn: "mysql://backup@127.0.0.1/ledger", binlog: {stream: true},
           targets: [local]}
  plain: {kind: postgresql, dsn: "host=127.0.0.1 dbname=plain", targets: [local]}
"""


def _supervisor(tmp_path: Path) -> tuple[StreamSupervisor, list[Alert], DaemonMetrics]:
    cfg = write_config(tmp_path, SOURCES)
    alerts: list[Alert] = []
    metrics = DaemonMetrics()
    sup = StreamSupervisor(cfg, alerts.append, metrics)
    for name, kind in streamed_sources(cfg).items():  # what start() builds, without threads
        sup.streamers[name] = kind(cfg, name)
    return sup, alerts, metrics


def test_a_stream_behind_its_rpo_alerts_once_then_recovers(tmp_path: Path) -> None:
    """A stream whose last stored file is older than the source's RPO (5 minutes) raises
    one failure alert, however often it is checked; once it stores again, one recovery
    alert follows. A stream within its RPO raises nothing."""
    sup, alerts, _ = _supervisor(tmp_path)
    sup.streamers["registry"].state.last_push_time = time.time() - 3600
    sup.streamers["ledger"].state.last_push_time = time.time()
    sup.check()
    sup.check()
    assert [(a.kind, a.source) for a in alerts] == [("failure", "registry")]
    assert "limit 300s" in alerts[0].text
    sup.streamers["registry"].state.last_push_time = time.time()
    sup.check()
    assert [(a.kind, a.source) for a in alerts][1:] == [("recovery", "registry")]


def test_only_streamed_sources_are_supervised_and_gauged(tmp_path: Path) -> None:
    """The WAL and binlog streams are supervised, a plain source is not; a stream whose
    tool is not running is exported as down."""
    sup, _, metrics = _supervisor(tmp_path)
    assert set(sup.streamers) == {"registry", "ledger"}
    assert sup.up("plain") is None
    sup.streamers["ledger"].state.running = True
    for streamer in sup.streamers.values():
        streamer.state.last_push_time = time.time()
    sup.check()
    assert metrics.streams() == {"registry": False, "ledger": True}
