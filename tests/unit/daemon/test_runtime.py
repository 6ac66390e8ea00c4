"""One daemon per state directory; status from the daemon's files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recoveryd.daemon.runtime import DaemonLock, running_daemon_pid
from recoveryd.daemon.status import build_status
from recoveryd.errors import ExitCode, RefusedError
from recoveryd.state import StateStore
from tests.unit.daemon.helpers import write_config


def test_live_lock_is_refused_with_exit_5(tmp_path: Path) -> None:
    """A second daemon on the same state directory is refused, naming the holder's pid."""
    first = DaemonLock(tmp_path)
    first.acquire()
    try:
        assert running_daemon_pid(tmp_path) is not None
        with pytest.raises(RefusedError, match="held by a running daemon") as err:
            DaemonLock(tmp_path).acquire()
        assert err.value.exit_code == ExitCode.REFUSED
    finally:
        first.release()
    assert running_daemon_pid(tmp_path) is None


def test_stale_lock_of_a_dead_daemon_is_taken_over(tmp_path: Path) -> None:
    """A lock file left by a crashed daemon (no flock held) is taken over."""
    (tmp_path / "daemon.lock").write_text("999999\n")
    lock = DaemonLock(tmp_path)
    lock.acquire()
    assert lock.previous_pid == 999999
    lock.release()


def test_status_reports_age_against_rpo(tmp_path: Path) -> None:
    """Per source: last snapshot, age, RPO, OK/OVERDUE, last verify and last restore drill."""
    cfg = write_config(
        tmp_path,
        "sources:\n"
        "  pop: {kind: sqlite, path: /tmp/p.db, targets: [local], rpo: 1h}\n"
        "  geo: {kind: directory, path: /srv, targets: [local], rpo: 10m}\n"
        "  tmp: {kind: directory, path: /tmp, targets: [local]}\n",
    )
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    st = StateStore(tmp_path / "state")
    for source, age in (("pop", 30), ("geo", 45)):
        run = st.start_run("daemon_backup", source=source, at=now - timedelta(minutes=age + 1))
        st.end_run(run, "ok", at=now - timedelta(minutes=age))
    run = st.start_run("daemon_verify", source="pop", at=now - timedelta(minutes=5))
    st.end_run(run, "integrity", error="chunk x: bad tag", at=now - timedelta(minutes=4))
    st.close()
    doc = build_status(cfg, tmp_path / "state", now)
    assert doc["daemon"]["running"] is False
    pop, geo, tmp = doc["sources"]["pop"], doc["sources"]["geo"], doc["sources"]["tmp"]
    assert (pop["age_seconds"], pop["rpo_seconds"], pop["overdue"]) == (1800.0, 3600.0, False)
    assert geo["overdue"] is True
    assert tmp["last_snapshot"] is None and tmp["overdue"] is False
    assert pop["last_verify"]["result"] == "integrity"
    assert set(pop) >= {
        "last_snapshot", "age_seconds", "rpo_seconds", "overdue",
        "last_verify", "last_restore_drill",
    }  # fmt: skip
