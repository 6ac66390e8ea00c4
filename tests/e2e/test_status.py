"""`recoveryd status` tells the operator on duty, per source, the last snapshot and the
last integrity check, whether they were made by the daemon or by hand."""

from __future__ import annotations

from pathlib import Path

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target


def test_status_shows_backups_and_verifies_run_from_the_command_line(
    deployment: Deployment, tmp_path: Path
) -> None:
    """After `backup` and `verify --read-data`, status lists the snapshot's time, its age
    within the RPO and the verify result for that source; a source never backed up says so."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 500)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "registry": {"kind": "sqlite", "path": str(db), "targets": ["local"], "rpo": "1h"},
            "archive": {"kind": "sqlite", "path": str(db), "targets": ["local"], "rpo": "1h"},
        },
    )
    deployment.backup("registry")
    deployment.cli("verify", "--read-data").expect(0)

    doc = deployment.cli("--json", "status").expect(0).data

    registry, archive = doc["sources"]["registry"], doc["sources"]["archive"]
    assert registry["last_snapshot"] is not None
    assert registry["overdue"] is False
    assert registry["last_verify"]["result"] == "ok"
    assert archive["last_snapshot"] is None
    assert archive["last_verify"] is None
    assert archive["overdue"] is True
