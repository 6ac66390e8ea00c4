"""Issue 2 acceptance: any changed byte of any stored object is detected.

`verify --read-data` exits 3 naming the snapshot and the object; restore of
the snapshot fails (exit 3) instead of producing wrong data."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target
from tests.fixtures.objectstores import TargetSpec


@pytest.fixture
def small_repo(deployment: Deployment, tmp_path: Path) -> tuple[Deployment, Path, str]:
    """A filesystem repository holding one snapshot of a small SQLite registry (a few chunks)."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 12000)
    store = tmp_path / "store"
    deployment.configure(
        targets={"local": fs_target(store)},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["local"]}},
    )
    sid = deployment.backup()[0]["id"]
    return deployment, store, sid


def flip(path: Path, rng: random.Random, span: tuple[int, int] | None = None) -> tuple[int, int]:
    """Flip one bit of one byte, anywhere or at a position in `span` (start, end)."""
    data = bytearray(path.read_bytes())
    pos = rng.randrange(*(span or (0, len(data))))
    old = data[pos]
    data[pos] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return pos, old


@pytest.mark.integration
def test_every_flipped_byte_fails_verify_and_restore(
    small_repo: tuple[Deployment, Path, str], tmp_path: Path
) -> None:
    """For every object in the store (config, wrapped keys, packs, the index, the manifest),
    one flipped bit makes `verify --read-data` exit 3 naming the object (and the snapshot,
    for snapshot objects) and makes restore exit 3 without leaving a restored database
    behind. In a pack, a bit is flipped among its chunks and another in its header: the
    header only repeats the index, so there restore (which reads chunks by their indexed
    offsets) still restores the intact data while verify reports the damaged header."""
    d, store, sid = small_repo
    rng = random.Random(2026)
    # locks are not data; anchors are checked by `audit verify` (tests/unit/test_anchors.py)
    objects = sorted(
        p
        for p in store.rglob("*")
        if p.is_file() and "locks" not in p.parts and "anchors" not in p.parts
    )
    kinds = {p.relative_to(store).parts[0] for p in objects}
    assert {"config", "keys", "packs", "index", "snapshots"} <= kinds
    damages: list[tuple[Path, tuple[int, int] | None, bool]] = []
    for obj in objects:
        if "packs" in obj.parts:
            size = obj.stat().st_size
            blob_end = size - 4 - int.from_bytes(obj.read_bytes()[-4:], "big")
            damages += [(obj, (0, blob_end), True), (obj, (blob_end, size), False)]
        else:
            damages.append((obj, None, True))
    for obj, span, restore_fails in damages:
        key = str(obj.relative_to(store))
        original = obj.read_bytes()
        flip(obj, rng, span)
        try:
            verify = d.cli("verify", "--read-data")
            assert verify.code == 3, (key, verify.err)
            assert "Traceback" not in verify.err
            assert key in verify.err, (key, verify.err)
            if key.startswith(("data/", "snapshots/")) or (
                key.startswith("packs/") and restore_fails
            ):
                assert sid in verify.err, (key, verify.err)
            dest = tmp_path / "restored.db"
            restore = d.cli("restore", sid, "--to", str(dest))
            if not restore_fails:
                assert restore.code == 0, (key, restore.err)
                dest.unlink()
                continue
            assert restore.code == 3, (key, restore.err)
            assert key in restore.err
            assert not dest.exists()
        finally:
            obj.write_bytes(original)
    d.cli("verify", "--read-data").expect(0)


@pytest.mark.integration
def test_failed_verify_is_shown_in_the_listing(
    small_repo: tuple[Deployment, Path, str],
) -> None:
    """After a failed verify, `snapshots` shows the snapshot as "failed"; after a good one, "ok"."""
    d, store, sid = small_repo
    chunk = sorted(p for p in (store / "packs").rglob("*") if p.is_file())[-1]
    original = chunk.read_bytes()
    flip(chunk, random.Random(1), (0, 28))  # the first chunk's envelope header
    assert d.cli("verify", "--read-data", sid).code == 3
    assert d.snapshots()[0]["verified"] == "failed"
    chunk.write_bytes(original)
    d.cli("verify", "--read-data", sid).expect(0)
    assert d.snapshots()[0]["verified"] == "ok"
    verify = d.cli("--json", "verify", "--read-data").expect(0).data
    assert verify["ok"] is True
    assert verify["snapshots"] == [sid]


@pytest.mark.integration
def test_flipped_bytes_in_an_s3_store_are_detected(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """On Swift too, a flipped byte in a chunk (inside its pack) or in the manifest fails
    verify and restore with exit 3 naming the snapshot and the object."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 3000)
    spec = target_factory("swift")
    deployment.configure(
        targets={"swift": spec.yaml()},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["swift"]}},
    )
    sid = deployment.backup()[0]["id"]
    assert spec.server is not None
    client, bucket = spec.server.client(), spec.target.bucket
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    rng = random.Random(3)
    for key in (next(k for k in keys if k.startswith("packs/")), f"snapshots/{sid}"):
        original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        damaged = bytearray(original)
        # in a pack: within the first chunk's envelope header, which restore reads
        damaged[rng.randrange(28 if key.startswith("packs/") else len(damaged))] ^= 0x10
        client.put_object(Bucket=bucket, Key=key, Body=bytes(damaged))
        verify = deployment.cli("verify", "--read-data")
        assert verify.code == 3, verify.err
        assert key in verify.err and sid in verify.err
        restore = deployment.cli("restore", sid, "--to", str(tmp_path / "r.db"))
        assert restore.code == 3, restore.err
        assert not (tmp_path / "r.db").exists()
        client.put_object(Bucket=bucket, Key=key, Body=original)
    deployment.cli("verify", "--read-data").expect(0)


@pytest.mark.integration
def test_restore_uses_a_good_copy_when_one_target_is_damaged(
    deployment: Deployment, tmp_path: Path
) -> None:
    """With the manifest damaged in the first target, restore (no --target) takes the good
    copy from the second; verify still reports the damage (exit 3)."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 2000)
    deployment.configure(
        targets={"a": fs_target(tmp_path / "a"), "b": fs_target(tmp_path / "b")},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["a", "b"]}},
    )
    sid = deployment.backup()[0]["id"]
    flip(tmp_path / "a" / "snapshots" / sid, random.Random(9))
    dest = tmp_path / "restored.db"
    deployment.cli("restore", sid[:8], "--to", str(dest)).expect(0)
    assert demo_data.sqlite_checksums(dest) == demo_data.sqlite_checksums(db)
    assert deployment.cli("verify").code == 3
    assert deployment.cli("restore", sid, "--to", str(dest) + "2", "--target", "a").code == 3
    listing = deployment.cli("snapshots")
    assert listing.code == 0
    assert sid[:12] in listing.out


@pytest.mark.integration
def test_listing_survives_a_damaged_target(deployment: Deployment, tmp_path: Path) -> None:
    """When one target's repository cannot be opened, `snapshots` lists the others and warns
    in one line naming the damaged target; naming that target alone is exit 3."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 500)
    deployment.configure(
        targets={"a": fs_target(tmp_path / "a"), "b": fs_target(tmp_path / "b")},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["a", "b"]}},
    )
    sid = deployment.backup()[0]["id"]
    flip(tmp_path / "a" / "config", random.Random(4))
    listing = deployment.cli("--json", "snapshots")
    assert listing.code == 0
    assert [(s["id"], s["targets"]) for s in listing.data] == [(sid, ["b"])]
    assert listing.err.count("\n") == 1
    assert "target a not listed" in listing.err
    assert deployment.cli("snapshots", "--target", "a").code == 3
