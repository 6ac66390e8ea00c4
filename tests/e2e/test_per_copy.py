"""Per-copy truth: a snapshot's verified state belongs to each copy (snapshot, target), and
the stores, not the state directory, say which snapshots exist."""

from __future__ import annotations

import shutil
from pathlib import Path

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target


def _two_targets(deployment: Deployment, tmp_path: Path, targets: list[str]) -> None:
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 300)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "local"), "offsite": fs_target(tmp_path / "off")},
        sources={
            "registry": {
                "kind": "sqlite",
                "path": str(db),
                "targets": targets,
                "rpo": "4h",
                "schedule": "every 1h",
            }
        },
    )


def test_a_corrupted_offsite_copy_does_not_fail_the_local_one(
    deployment: Deployment, tmp_path: Path
) -> None:
    """One damaged chunk on `offsite`: verify exits 3, the offsite copy is failed, and the
    intact local copy stays verified ok (listed on its own, it reads ok)."""
    _two_targets(deployment, tmp_path, ["local", "offsite"])
    sid = deployment.backup()[0]["id"]
    pack = next(p for p in (tmp_path / "off" / "packs").rglob("*") if p.is_file())
    blob = pack.read_bytes()
    pack.write_bytes(bytes([blob[0] ^ 1]) + blob[1:])  # the first chunk in the pack
    deployment.cli("verify", "--read-data").expect(3)
    (snap,) = deployment.snapshots()
    assert snap["id"] == sid
    assert snap["verified_by_target"] == {"local": "ok", "offsite": "failed"}
    assert snap["verified"] == "failed"
    (local,) = deployment.snapshots("--target", "local")
    assert local["verified"] == "ok"


def test_a_fresh_copy_is_not_ok_before_it_was_verified_where_it_lives(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A snapshot verified on `local` and then copied to `offsite` is ok on local and
    unverified (null) on offsite until verify checks it there."""
    _two_targets(deployment, tmp_path, ["local"])
    deployment.backup()
    deployment.cli("verify", "--read-data").expect(0)
    deployment.cli("copy", "--from", "local", "--to", "offsite").expect(0)
    (snap,) = deployment.snapshots()
    assert snap["verified_by_target"] == {"local": "ok", "offsite": None}
    assert snap["verified"] is None
    deployment.cli("verify", "--target", "offsite").expect(0)
    assert deployment.snapshots()[0]["verified"] == "ok"


def test_status_reads_the_store_when_the_state_directory_is_lost(
    deployment: Deployment, tmp_path: Path
) -> None:
    """After a CLI backup, status counts it as the last backup result; with the state
    directory deleted, status lists the store instead and does not call the source
    overdue, per target too."""
    _two_targets(deployment, tmp_path, ["local", "offsite"])
    deployment.backup()
    src = deployment.cli("--json", "status").expect(0).data["sources"]["registry"]
    assert src["last_backup_result"] == "ok"
    assert src["targets"]["offsite"]["last_snapshot"] is not None
    shutil.rmtree(deployment.state_dir)
    src = deployment.cli("--json", "status").expect(0).data["sources"]["registry"]
    assert src["from"] == "store"
    assert src["last_snapshot"] is not None
    assert src["overdue"] is False
    assert {t: v["overdue"] for t, v in src["targets"].items()} == {
        "local": False,
        "offsite": False,
    }


def test_daemon_once_skips_a_source_whose_newest_snapshot_is_fresh(
    deployment: Deployment, tmp_path: Path
) -> None:
    """`daemon --once` with a fresh state directory does not snapshot a source whose newest
    snapshot (in the store) is seconds old: no schedule slot passed since then."""
    _two_targets(deployment, tmp_path, ["local"])
    deployment.backup()
    shutil.rmtree(deployment.state_dir)
    deployment.cli("daemon", "--once").expect(0)
    assert len(deployment.snapshots()) == 1
