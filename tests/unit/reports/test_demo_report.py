"""The report `make run` ends with: the newest drill, else the recorded round trip."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from recoveryd.chain import HashChain
from recoveryd.reports import ReportError, render_demo_report
from recoveryd.state import StateStore
from tests.unit.reports import sample

CONFIG = """\
state_dir: ./state
encryption: {key_file: ./k}
targets: {local: {kind: filesystem, path: ./store}}
sources:
  registry: {kind: sqlite, path: ./r.db, targets: [local], rpo: 4h}
"""


def _runs(state_dir: Path) -> None:
    store = StateStore(state_dir)
    t = sample.T0
    for kind, start, seconds in (("backup", 0, 3), ("verify", 5, 1), ("restore", 10, 2.5)):
        run = store.start_run(
            kind, source=None if kind == "verify" else "registry", at=t + timedelta(seconds=start)
        )
        store.end_run(run, "ok", bytes_read=2048, at=t + timedelta(seconds=start + seconds))
    store.close()


def test_without_a_drill_the_recorded_round_trip_is_reported(tmp_path: Path) -> None:
    """Given the demo folder, the report covers its backup, verify and restore: RTO is the
    restore's duration, RPO the age of the backup when the restore began, and the journal
    it is built from is hash-chained."""
    (tmp_path / "recoveryd.yaml").write_text(CONFIG, encoding="utf-8")
    _runs(tmp_path / "state")
    path = render_demo_report(tmp_path)
    assert path.name == "report.en.html" and path.parent.parent == tmp_path / "state" / "reports"
    html = path.read_text(encoding="utf-8")
    assert "backup-restore-round-trip" in html and "PASSED" in html
    assert "RTO 2.5 s" in html and "RPO 7 s / 4 h 00 min" in html
    assert HashChain(path.parent / "journal.jsonl").verify().ok


def test_the_newest_drill_is_reported_when_there_is_one(state_dir: Path) -> None:
    """With a drill journal in the state directory, the demo report is that drill's."""
    path = render_demo_report(state_dir, fmt="md", lang="zh")
    assert path == state_dir / "drills" / sample.RUN_ID / "report.zh.md"


def test_nothing_recorded_is_one_clear_error(tmp_path: Path) -> None:
    """An empty state directory says what to do first."""
    with pytest.raises(ReportError, match="run a backup or a drill first"):
        render_demo_report(tmp_path)
