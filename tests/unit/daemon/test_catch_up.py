"""Catch-up after downtime, through the daemon itself, with an injected clock (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from recoveryd.daemon.due import due_now
from recoveryd.daemon.schedule import JobSpec
from recoveryd.daemon.service import Daemon
from recoveryd.state import StateStore
from tests.unit.daemon.helpers import FakeOps, write_config

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


def test_source_past_its_rpo_is_snapshotted_once_at_start(tmp_path: Path) -> None:
    """The server was down for 30 hours: the hourly source whose newest snapshot (per the
    store) is 30h old runs exactly once; the one snapshotted 25 minutes ago waits."""
    cfg = write_config(
        tmp_path,
        "sources:\n"
        "  stale: {kind: sqlite, path: /a.db, schedule: '0 * * * *', rpo: 1h, targets: [local]}\n"
        "  fresh: {kind: sqlite, path: /b.db, schedule: '0 * * * *', rpo: 1h, targets: [local]}\n"
        "daemon: {prune_schedule: null, timezone: UTC}\n",
    )
    st = StateStore(tmp_path / "state")
    for name in ("stale", "fresh"):  # the daemon's last attempts, just after the 12:00 slot
        run = st.start_run("daemon_backup", source=name, at=NOW - timedelta(minutes=26))
        st.end_run(run, "failed" if name == "stale" else "ok", at=NOW - timedelta(minutes=25))
    st.close()
    ops = FakeOps()
    ops.snapshots = {"stale": NOW - timedelta(hours=30), "fresh": NOW - timedelta(minutes=25)}
    code = Daemon(str(cfg.path), once=True, ops=ops, environ={}, clock=lambda: NOW).run()
    assert code == 0
    assert ops.calls == [("backup", "stale")]


def test_due_now_counts_slots_not_their_number() -> None:
    """A job is due when at least one slot passed since its last run — however many passed."""
    spec = JobSpec("backup:a", "backup", "*/15 * * * *", "k", source="a")
    assert due_now(spec, None, NOW, "UTC")
    assert due_now(spec, NOW - timedelta(days=3), NOW, "UTC")
    assert not due_now(spec, NOW + timedelta(minutes=1), NOW + timedelta(minutes=10), "UTC")
    assert due_now(spec, NOW - timedelta(minutes=1), NOW, "UTC")  # the 12:30 slot came
