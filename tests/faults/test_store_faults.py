"""Object-store faults on real stores: Ceph RGW and Swift (s3api), behind a loopback fault
proxy (tests/faults/proxy.py) that resets connections, stalls past the client's read
timeout, answers 500 and 503 SlowDown, truncates bodies and adds latency, at seeded
requests.

What must hold for every seed: a backup retries and then either commits a snapshot that
verifies with its data, or fails with one clear line naming the target and commits
nothing; a restore returns exactly the bytes backed up or fails, never other bytes; no
multipart upload is left behind in the bucket.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from recoveryd.errors import RecoverydError
from recoveryd.repo import ChunkerParams, Repository, SnapshotMeta, write_snapshot
from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store
from recoveryd.stores.wrappers import RetryingStore, RetryPolicy
from tests.faults.conftest import Tally, points
from tests.faults.proxy import FaultPlan, FaultProxy
from tests.fixtures.objectstores import S3Server
from tests.unit.repo.helpers import BytesReader, master

pytestmark = pytest.mark.integration

# Chunks of 1-8 MiB, so that some exceed the 5 MiB part size and go up in parts.
BIG = ChunkerParams(min_size=1024 * 1024, avg_size=3 * 1024 * 1024, max_size=8 * 1024 * 1024)
PART = 5 * 1024 * 1024
RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)


@dataclass
class Rig:
    server: S3Server
    bucket: str
    proxy: FaultProxy
    faulty: Repository  # through the proxy
    clean: Repository  # straight to the store


def _store(server: S3Server, bucket: str, endpoint: str) -> RetryingStore:
    settings = S3Settings(
        bucket=bucket,
        endpoint_url=endpoint,
        region=server.region,
        credentials=S3Credentials(server.access_key, server.secret_key),
        part_size=PART,
        connect_timeout=2.0,
        read_timeout=1.5,
    )
    return RetryingStore(S3Store("offsite", settings), RETRY, sleep=lambda _: None)


@pytest.fixture
def rig(s3_server: S3Server) -> Iterator[Rig]:
    """A fresh bucket with a repository, reachable straight and through a fault proxy
    (faults off until the test turns them on)."""
    bucket = s3_server.make_bucket()
    plan = FaultPlan(seed=0, enabled=False, stall=2.5)
    upstream = urlsplit(s3_server.endpoint_url).port
    assert upstream is not None
    with FaultProxy(upstream, plan) as proxy:
        key = master()
        clean = Repository.init(
            _store(s3_server, bucket, s3_server.endpoint_url), key, chunker_params=BIG
        )
        # One upload at a time: the n-th request is the same one for the same seed.
        faulty = Repository.open(_store(s3_server, bucket, proxy.endpoint_url), key, concurrency=1)
        yield Rig(s3_server, bucket, proxy, faulty, clean)


def _open_uploads(rig: Rig) -> list[str]:
    resp = rig.server.client().list_multipart_uploads(Bucket=rig.bucket)
    return [u["Key"] for u in resp.get("Uploads", [])]


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    assert "Traceback" not in text
    return text


# Seed 9 (Ceph) lost the answer to a CreateMultipartUpload: the upload the store had
# created was left open, its id unknown to the client.
FOUND = (9,)


@pytest.mark.parametrize("seed", sorted(set(range(points(20, 2))) | set(FOUND)))
def test_backups_and_restores_through_a_faulty_network(
    rig: Rig, seed: int, campaign: Tally
) -> None:
    """Seeded faults on one request in four of a backup (then of a restore): the backup
    commits a verifiable snapshot or fails clearly with nothing committed; the restore
    returns the backed-up bytes or fails; no multipart upload is left open."""
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(6, 20) * 1024 * 1024)
    meta = SnapshotMeta(source="registry")
    rig.proxy.plan.seed, rig.proxy.plan.enabled = seed, True
    try:
        committed = True
        write_snapshot(BytesReader(data), [rig.faulty], meta)
    except RecoverydError as exc:
        committed = False
        assert _one_line(exc).startswith("target offsite:"), exc
    rig.proxy.plan.enabled = False
    campaign.add("fault:store", len(rig.proxy.injected))
    assert _open_uploads(rig) == [], f"seed {seed}: multipart uploads left open"
    listed = rig.clean.snapshot_ids()
    if not committed:
        assert meta.snapshot_id not in listed, f"seed {seed}: a failed backup was committed"
        return
    assert listed == [meta.snapshot_id]
    report = rig.clean.verify(read_data=True)
    assert report.ok, f"seed {seed}: {report}"

    before = len(rig.proxy.injected)
    rig.proxy.plan.seed, rig.proxy.plan.enabled = seed + 10_000, True
    rig.proxy.plan.only = frozenset({"GET", "HEAD"})
    try:
        with Repository.open(rig.faulty.store, master()).restore_stream(meta.snapshot_id) as r:
            restored = r.read()
    except RecoverydError as exc:
        _one_line(exc)
    else:
        assert restored == data, f"seed {seed}: a restore returned other bytes"
    finally:
        rig.proxy.plan.enabled = False
        campaign.add("fault:store", len(rig.proxy.injected) - before)


@pytest.mark.parametrize("kind", ["reset", "reset_after", "timeout", "503", "500", "truncate"])
def test_each_fault_alone_is_retried_to_success(rig: Rig, kind: str, campaign: Tally) -> None:
    """One request in three failing in one way, every kind in turn: with retries, the
    backup commits and the restore returns the same bytes."""
    data = random.Random(kind).randbytes(9 * 1024 * 1024)
    rig.proxy.plan.seed, rig.proxy.plan.kinds, rig.proxy.plan.rate = 7, (kind,), 0.3
    rig.proxy.plan.enabled = True
    try:
        (info,) = write_snapshot(BytesReader(data), [rig.faulty], SnapshotMeta(source="db"))
        with Repository.open(rig.faulty.store, master()).restore_stream(info.id) as r:
            assert r.read() == data
    finally:
        rig.proxy.plan.enabled = False
        campaign.add("fault:store", len(rig.proxy.injected))
    assert rig.proxy.injected, "no fault was injected"
    assert _open_uploads(rig) == []
    assert rig.clean.verify(read_data=True).ok


def test_a_store_that_keeps_failing_fails_the_backup_clearly(rig: Rig, campaign: Tally) -> None:
    """Every request answered 503 SlowDown: the backup gives up after its retries with one
    line naming the target, commits nothing and leaves no upload open."""
    rig.proxy.plan.seed, rig.proxy.plan.kinds, rig.proxy.plan.rate = 1, ("503",), 1.0
    rig.proxy.plan.enabled = True
    try:
        with pytest.raises(RecoverydError) as info:
            write_snapshot(
                BytesReader(io.BytesIO(b"x" * 100).read()), [rig.faulty], SnapshotMeta("db")
            )
    finally:
        rig.proxy.plan.enabled = False
        campaign.add("fault:store", len(rig.proxy.injected))
    assert _one_line(info.value).startswith("target offsite:")
    assert "retry later" in str(info.value)
    assert rig.clean.snapshot_ids() == []
    assert _open_uploads(rig) == []


@dataclass
class AbortFails(FaultPlan):
    """Every part upload answers 500, and the first `abort_failures` aborts are reset."""

    abort_failures: int = 2
    aborts_seen: int = 0

    def fault(self, n: int, method: str, path: str) -> str | None:
        if not self.enabled or "uploadId=" not in path:
            return None
        if method == "PUT":
            return "500"
        if method == "DELETE":
            self.aborts_seen += 1
            return "reset" if self.aborts_seen <= self.abort_failures else None
        return None


def test_an_abort_that_fails_once_is_retried_so_no_upload_is_left(
    s3_server: S3Server, campaign: Tally
) -> None:
    """A multipart upload whose parts fail, and whose abort is reset twice: the put
    still fails clearly, and the abort is retried until the upload is gone."""
    bucket = s3_server.make_bucket()
    upstream = urlsplit(s3_server.endpoint_url).port
    assert upstream is not None
    plan = AbortFails(seed=0)
    with FaultProxy(upstream, plan) as proxy:
        store = _store(s3_server, bucket, proxy.endpoint_url).inner
        with pytest.raises(RecoverydError) as info:
            store.put("data/big", b"x" * (PART + 1024))
        campaign.add("fault:store", len(proxy.injected))
    assert _one_line(info.value).startswith("target offsite:")
    resp = s3_server.client().list_multipart_uploads(Bucket=bucket)
    assert resp.get("Uploads", []) == [], "the failed upload was left open"
