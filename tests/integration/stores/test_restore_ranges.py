"""Restore from packs on the real Ceph RGW of the fixtures reads neighbouring chunks with
one ranged GET: the GET requests the store receives (counted on the wire by a loopback
proxy in front of it) fall, and the restored bytes are the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from recoveryd.repo import ChunkerParams, Repository
from recoveryd.repo.ranges import NO_MERGE, Merge
from recoveryd.repo.restore import RestoreReader
from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store
from recoveryd.stores.wrappers import RetryingStore
from tests.faults.proxy import FaultPlan, FaultProxy
from tests.unit.repo.helpers import master, snapshot, text_data

from ...fixtures.objectstores import S3Server

pytestmark = pytest.mark.integration

PARAMS = ChunkerParams(min_size=4096, avg_size=16384, max_size=65536)
PACK_SIZE = 1024 * 1024


@dataclass
class Requests(FaultPlan):
    """A fault plan that injects nothing and records every request (method, path)."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def fault(self, n: int, method: str, path: str) -> str | None:
        with self._lock:
            self.seen.append((method, path))
        return None

    def pack_gets(self) -> int:
        with self._lock:
            return sum(m == "GET" and "/packs/" in p for m, p in self.seen)


def _store(server: S3Server, bucket: str, endpoint: str) -> RetryingStore:
    settings = S3Settings(
        bucket=bucket,
        endpoint_url=endpoint,
        region=server.region,
        credentials=S3Credentials(server.access_key, server.secret_key),
    )
    return RetryingStore(S3Store("offsite", settings))


def _restore(repo: Repository, sid: str, merge: Merge | None) -> bytes:
    with RestoreReader(repo, repo.manifest(sid), merge=merge) as reader:
        return b"".join(iter(lambda: reader.read(1 << 20), b""))


def test_restore_sends_fewer_gets_and_returns_the_same_bytes(ceph_s3: S3Server) -> None:
    """Restoring a snapshot of ~2 MiB in 1 MiB packs of ~16 KiB chunks: one chunk per
    request sends one GET per chunk; merged ranges send at most a quarter of that, and
    both restores return the snapshot's bytes."""
    bucket = ceph_s3.make_bucket()
    direct = _store(ceph_s3, bucket, ceph_s3.endpoint_url)
    repo = Repository.init(direct, master(), chunker_params=PARAMS, pack_size=PACK_SIZE)
    data = text_data(60_000)
    sid = snapshot(repo, data)
    chunks = len(repo.manifest(sid).chunks)
    upstream = urlsplit(ceph_s3.endpoint_url).port
    assert upstream is not None
    plan = Requests(seed=0)
    with FaultProxy(upstream, plan) as proxy:
        via_proxy = Repository.open(_store(ceph_s3, bucket, proxy.endpoint_url), master())
        via_proxy.chunks.index()  # the index is read once, before counting
        before = plan.pack_gets()
        assert _restore(via_proxy, sid, NO_MERGE) == data
        singles = plan.pack_gets() - before
        before = plan.pack_gets()
        assert _restore(via_proxy, sid, None) == data
        merged = plan.pack_gets() - before
    assert singles == chunks > 40
    assert 0 < merged * 4 <= singles
