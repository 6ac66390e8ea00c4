"""Issue 2 acceptance: the store and the master key are enough (the backup server burned),
SM4-GCM repositories round-trip, key rotation keeps old snapshots restorable, copies move
snapshots between vendors, and Object Lock is only claimed where a store enforces it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target
from tests.fixtures.objectstores import TargetSpec


def registry(tmp_path: Path, rows: int = 4000) -> Path:
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, rows)
    return db


def sqlite_source(db: Path, *targets: str) -> dict[str, Any]:
    return {"registry": {"kind": "sqlite", "path": str(db), "targets": list(targets)}}


def restored_equal(d: Deployment, sid: str, db: Path, dest: Path, *extra: str) -> None:
    d.cli("restore", sid, "--to", str(dest), *extra).expect(0)
    assert demo_data.sqlite_checksums(dest) == demo_data.sqlite_checksums(db)


@pytest.mark.integration
def test_state_dir_lost_store_and_key_suffice(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """With the state directory deleted, snapshots, verify and restore work from a Swift
    store and the key file alone; the verified state is unknown (null), not invented."""
    db = registry(tmp_path)
    deployment.configure(
        targets={"swift": target_factory("swift").yaml()}, sources=sqlite_source(db, "swift")
    )
    first = deployment.backup()[0]["id"]
    second = deployment.backup()[0]["id"]
    deployment.cli("verify", "--read-data").expect(0)
    shutil.rmtree(deployment.state_dir)
    listed = deployment.snapshots()
    assert [s["id"] for s in listed] == [first, second]
    assert [s["verified"] for s in listed] == [None, None]
    deployment.cli("verify", "--read-data", first).expect(0)
    restored_equal(deployment, first, db, tmp_path / "r.db")


@pytest.mark.integration
def test_sm4_repository_and_key_rotation(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """An SM4-GCM repository on Ceph RGW round-trips; after `key rotate` the old key no longer
    opens it, and snapshots from before and after the rotation restore with the new key."""
    db = registry(tmp_path)
    deployment.configure(
        targets={"ceph": target_factory("ceph").yaml(), "local": fs_target(tmp_path / "store")},
        sources=sqlite_source(db, "ceph", "local"),
        cipher="sm4-gcm",
    )
    before = deployment.backup()[0]["id"]
    old_key = deployment.key_file.read_text()
    rotated = deployment.cli("--json", "key", "rotate").expect(0).data
    assert sorted(rotated["targets"]) == ["ceph", "local"]
    assert deployment.key_file.read_text() != old_key
    assert Path(rotated["previous"]).read_text() == old_key
    after = deployment.backup()[0]["id"]
    deployment.cli("verify", "--read-data").expect(0)
    restored_equal(deployment, before, db, tmp_path / "before.db", "--target", "ceph")
    restored_equal(deployment, after, db, tmp_path / "after.db", "--target", "ceph")
    deployment.key_file.write_text(old_key)
    stale = deployment.cli("snapshots")
    assert stale.code == 2
    assert "does not open this repository" in stale.err
    assert len(stale.err.strip().splitlines()) == 1


@pytest.mark.integration
def test_copy_to_another_vendor_and_prune_by_retention(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """`copy` moves every snapshot from Ceph to Swift (leaving a vendor) and the copies restore
    from Swift alone; `prune` applies keep_last, `--dry-run` first changing nothing."""
    db = registry(tmp_path, 2000)
    ceph, swift = target_factory("ceph").yaml(), target_factory("swift").yaml()
    source = sqlite_source(db, "ceph")
    source["registry"]["retention"] = {"keep_last": 2}
    deployment.configure(targets={"ceph": ceph, "swift": swift}, sources=source)
    ids = [deployment.backup()[0]["id"] for _ in range(3)]
    copied = deployment.cli("--json", "copy", "--from", "ceph", "--to", "swift").expect(0)
    assert sorted(copied.data["copied"]) == sorted(ids)
    assert deployment.cli("--json", "copy", "--from", "ceph", "--to", "swift").data["copied"] == []
    restored_equal(deployment, ids[0], db, tmp_path / "from-swift.db", "--target", "swift")
    dry = deployment.cli("--json", "prune", "--dry-run").expect(0).data
    assert {t["target"]: t["forgotten"] for t in dry["targets"]}["ceph"] == [ids[0]]
    assert len(deployment.snapshots("--target", "ceph")) == 3
    deployment.cli("prune").expect(0)
    assert [s["id"] for s in deployment.snapshots("--target", "ceph")] == ids[1:]
    # swift is not a target of the source: its copies are kept
    assert len(deployment.snapshots("--target", "swift")) == 3
    deployment.cli("verify", "--read-data").expect(0)


@pytest.mark.integration
def test_object_lock_only_where_enforced(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """Object Lock on Ceph RGW: the backup succeeds and its objects cannot be deleted with the
    daemon's own credentials. On Swift, which accepts the headers without enforcing them,
    the backup is refused with one sentence naming the target, and nothing is written."""
    db = registry(tmp_path, 2000)
    lock = {"mode": "compliance", "days": 1}
    ceph = target_factory("ceph", object_lock=lock)
    deployment.configure(targets={"ceph": ceph.yaml()}, sources=sqlite_source(db, "ceph"))
    deployment.backup()
    assert ceph.server is not None
    client = ceph.server.client()
    bucket = ceph.target.bucket
    manifest = next(
        o
        for o in client.list_objects_v2(Bucket=bucket)["Contents"]
        if o["Key"].startswith("snapshots/")
    )
    versions = client.list_object_versions(Bucket=bucket, Prefix=manifest["Key"])["Versions"]
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=manifest["Key"], VersionId=versions[0]["VersionId"])
    swift = target_factory("swift", object_lock=lock)
    deployment.configure(
        targets={"swift": swift.yaml()}, sources=sqlite_source(db, "swift"), init=False
    )
    refused = deployment.cli("backup")
    assert refused.code != 0
    assert "Traceback" not in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert "swift" in refused.err and "lock" in refused.err.lower()
    assert swift.server is not None
    listing = swift.server.client().list_objects_v2(Bucket=swift.target.bucket)
    assert not any(
        o["Key"].startswith(("snapshots/", "data/", "packs/", "index/"))
        for o in listing.get("Contents", [])
    )
