"""Object Lock on real stores: enforced on Ceph RGW, detected as not enforced on Swift."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recoveryd.config import ObjectLock
from recoveryd.errors import StoreError
from recoveryd.stores.base import Retention
from recoveryd.stores.factory import open_store
from recoveryd.stores.s3 import S3Store
from recoveryd.stores.wrappers import innermost

pytestmark = pytest.mark.integration

LOCK = {"mode": "compliance", "days": 1}


def _open(spec: Any, tmp_path: Path) -> Any:
    return open_store("primary", spec.target, base_dir=tmp_path, resolve_secret=str)


def _retain_until(spec: Any, key: str) -> datetime:
    resp = spec.server.client().get_object_retention(Bucket=spec.target.bucket, Key=key)
    until: datetime = resp["Retention"]["RetainUntilDate"]
    return until


def test_ceph_enforces_compliance_retention(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """On Ceph a locked target opens, and a compliance-locked object cannot be deleted."""
    spec = target_factory("ceph", object_lock=LOCK)
    store = _open(spec, tmp_path)
    assert store.capabilities().object_lock
    until = datetime.now(UTC) + timedelta(days=1)
    store.put("data/locked", b"precious", retention=Retention("compliance", until))
    with pytest.raises(StoreError, match="retention"):
        store.delete("data/locked")
    assert store.get("data/locked") == b"precious"


def test_extend_retention_pushes_later_and_never_shortens(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """extend_retention moves the retain-until date forward only."""
    spec = target_factory("ceph", object_lock=LOCK)
    store = _open(spec, tmp_path)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    store.put("data/c1", b"chunk", retention=Retention("compliance", first))
    later = first + timedelta(days=2)
    store.extend_retention("data/c1", Retention("compliance", later))
    assert _retain_until(spec, "data/c1") == later
    store.extend_retention("data/c1", Retention("compliance", first))
    assert _retain_until(spec, "data/c1") == later


def test_extend_retention_locks_an_object_written_without_retention(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """A chunk reused by a newer snapshot gets retention even if it had none."""
    spec = target_factory("ceph", object_lock=LOCK)
    store = _open(spec, tmp_path)
    store.put("data/old", b"chunk")
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    store.extend_retention("data/old", Retention("governance", until))
    assert _retain_until(spec, "data/old") == until
    with pytest.raises(StoreError, match="retention"):
        store.delete("data/old")


def test_lock_probe_leaves_no_visible_objects(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """The Object Lock probe cleans up after itself (governance bypass)."""
    spec = target_factory("ceph", object_lock=LOCK)
    store = _open(spec, tmp_path)
    assert list(store.list()) == []
    versions = spec.server.client().list_object_versions(Bucket=spec.target.bucket)
    assert versions.get("Versions", []) == []


def test_swift_accepts_lock_headers_but_is_refused_as_a_locked_target(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Swift deletes a 'locked' object, so a target configured with object_lock is refused."""
    spec = target_factory("swift", object_lock=LOCK)
    with pytest.raises(StoreError) as info:
        _open(spec, tmp_path)
    assert str(info.value).startswith(
        "target primary: the store accepts Object Lock headers but does not enforce them;"
    )
    unchecked = open_store(
        "primary", spec.target, base_dir=tmp_path, resolve_secret=str, check_object_lock=False
    )
    s3 = innermost(unchecked)
    assert isinstance(s3, S3Store)
    assert s3.probe_object_lock() == "not_enforced"
    assert not unchecked.capabilities().object_lock


def test_bucket_without_object_lock_is_refused_as_a_locked_target(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """object_lock on a bucket created without Object Lock is a clear configuration error."""
    spec = target_factory("ceph")
    locked = spec.target.model_copy(update={"object_lock": ObjectLock(mode="compliance", days=1)})
    with pytest.raises(StoreError, match=f"bucket {spec.target.bucket} has no Object Lock"):
        open_store("primary", locked, base_dir=tmp_path, resolve_secret=str)
