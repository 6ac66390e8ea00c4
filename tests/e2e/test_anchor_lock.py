"""Anchors on a real store that enforces Object Lock (Ceph RGW): written under the
repository's retention, so that not even the store's own credentials can remove them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment
from tests.fixtures.objectstores import TargetSpec


@pytest.mark.integration
def test_anchors_are_written_under_object_lock_and_catch_a_deleted_audit_log(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """After a backup to a compliance-locked Ceph bucket, the anchor objects carry a
    retain-until date in the future and cannot be deleted; deleting the local audit log
    is then found by `audit verify` (exit 3)."""
    db = tmp_path / "r.db"
    demo_data.create_sqlite(db, 50)
    spec = target_factory("ceph", object_lock={"mode": "compliance", "days": 1})
    deployment.configure(
        targets={"offsite": spec.yaml()},
        sources={"reg": {"kind": "sqlite", "path": str(db), "targets": ["offsite"]}},
    )
    deployment.backup()
    assert spec.server is not None
    client, bucket = spec.server.client(), spec.yaml()["bucket"]
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{spec.yaml().get('prefix', '')}")
    anchors = [o["Key"] for o in listed.get("Contents", []) if "anchors/" in o["Key"]]
    assert anchors
    for key in anchors:
        until = client.get_object_retention(Bucket=bucket, Key=key)["Retention"]
        assert until["Mode"] == "COMPLIANCE" and until["RetainUntilDate"] > datetime.now(UTC)
    versions = client.list_object_versions(Bucket=bucket, Prefix=anchors[0])["Versions"]
    with pytest.raises(client.exceptions.ClientError):
        client.delete_object(Bucket=bucket, Key=anchors[0], VersionId=versions[0]["VersionId"])
    (deployment.state_dir / "audit.jsonl").unlink()
    result = deployment.cli("audit", "verify")
    assert result.code == 3, result.err
    assert "audit.jsonl: deleted" in result.err
