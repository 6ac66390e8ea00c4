"""The daemon anchors the heads of its logs in the stores: at least every 10 minutes while
it runs, and when it ends (`--once` included)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from recoveryd.daemon import service as daemon
from recoveryd.daemon.service import Daemon
from tests.unit.daemon.helpers import FakeOps, write_config

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


def test_once_anchors_the_logs_when_it_ends(tmp_path: Path) -> None:
    """`daemon --once` runs what is due, then writes one anchor before it exits."""
    cfg = write_config(
        tmp_path,
        "sources:\n  a: {kind: sqlite, path: /a.db, schedule: '0 * * * *', targets: [local]}\n"
        "daemon: {prune_schedule: null, timezone: UTC}\n",
    )
    ops = FakeOps()
    assert Daemon(str(cfg.path), once=True, ops=ops, environ={}, clock=lambda: NOW).run() == 0
    assert ops.calls == [("backup", "a")]
    assert ops.anchors == 1


def test_the_running_daemon_anchors_at_least_every_ten_minutes() -> None:
    """The anchor job's interval keeps the promise of docs/OPERATIONS.md (10 minutes)."""
    assert 0 < daemon.ANCHOR_INTERVAL <= 600
