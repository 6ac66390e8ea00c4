"""`prune` also clears the debris of interrupted uploads on S3 targets: multipart uploads
left unfinished (a killed backup) cost storage until aborted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recoveryd import app
from recoveryd.config import load_config
from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target
from tests.fixtures.objectstores import TargetSpec


def _uploads(client: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.mark.integration
def test_prune_aborts_stale_multipart_uploads_on_s3(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """On a real Ceph RGW target, prune aborts unfinished multipart uploads older than the
    threshold (24 hours by default) and reports how many per target; a dry run and a fresh
    upload (a backup may be writing it) are left alone; filesystem targets report 0."""
    db = tmp_path / "reg.db"
    demo_data.create_sqlite(db, 300)
    spec = target_factory("ceph", prefix="recoveryd/")
    assert spec.server is not None
    deployment.configure(
        targets={"ceph": spec.yaml(), "local": fs_target(tmp_path / "store")},
        sources={"reg": {"kind": "sqlite", "path": str(db), "targets": ["ceph", "local"]}},
    )
    deployment.backup()
    client, bucket = spec.server.client(), spec.target.bucket
    client.create_multipart_upload(Bucket=bucket, Key="recoveryd/data/ab/interrupted")
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/not-ours")

    def aborted(doc: dict[str, Any]) -> dict[str, int]:
        return {t["target"]: t["aborted_uploads"] for t in doc["targets"]}

    dry = deployment.cli("--json", "prune", "--dry-run").expect(0).data
    assert aborted(dry) == {"ceph": 0, "local": 0}
    fresh = deployment.cli("--json", "prune").expect(0).data
    assert aborted(fresh) == {"ceph": 0, "local": 0}  # not stale yet: a backup may own it
    assert len(_uploads(client, bucket)) == 2

    report = app.prune(load_config(deployment.config), stale_uploads_after=timedelta(0))
    assert report.aborted_uploads == {"ceph": 1}
    assert aborted(report.to_json()) == {"ceph": 1, "local": 0}
    assert _uploads(client, bucket) == ["elsewhere/not-ours"]  # only under the target's prefix
    assert len(deployment.snapshots()) == 1
