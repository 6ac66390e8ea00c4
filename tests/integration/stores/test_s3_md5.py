"""Which uploads carry Content-MD5, against real stores (Ceph RGW, Swift s3api)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recoveryd.stores.base import Retention
from recoveryd.stores.s3 import S3Store

from ...fixtures.objectstores import S3Server
from .s3helpers import PART, s3_store

pytestmark = pytest.mark.integration


def _store(server: S3Server, bucket: str, **overrides: Any) -> S3Store:
    """A store with a client of its own: `_uploads` hooks into the client's events."""
    return s3_store(server, bucket, shared=False, **overrides)


def _uploads(store: S3Store) -> list[tuple[str, bool, str]]:
    """(operation, Content-MD5 sent, payload hash header) of every upload the client sends."""
    seen: list[tuple[str, bool, str]] = []

    def record(request: Any, event_name: str = "", **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        if op in ("PutObject", "UploadPart"):
            value = request.headers.get("X-Amz-Content-SHA256", b"")
            payload = value.decode() if isinstance(value, bytes) else str(value)
            seen.append((op, "Content-MD5" in request.headers, payload))

    store.client.meta.events.register("before-send.s3", record)
    return seen


def test_signed_payloads_carry_no_md5_and_the_others_do(s3_server: S3Server) -> None:
    """Over plain http an upload's SHA-256 is signed and checked by the store, so it carries
    no Content-MD5 (one hash of every byte, not two), single or multipart; over https
    (UNSIGNED-PAYLOAD) every upload carries Content-MD5. Both read back intact."""
    bucket = s3_server.make_bucket()
    plain = _store(s3_server, bucket)
    seen = _uploads(plain)
    plain.put("packs/one", b"a" * 100_000)
    plain.put("packs/multi", b"b" * (PART + 1))
    assert [op for op, _, _ in seen] == ["PutObject", "UploadPart", "UploadPart"]
    assert not any(md5 for _, md5, _ in seen)
    assert all(len(h) == 64 for _, _, h in seen)  # the payload's SHA-256, signed
    assert plain.get("packs/multi") == b"b" * (PART + 1)
    tls = {"endpoint_url": s3_server.https_endpoint_url, "ca_bundle": str(s3_server.ca_file)}
    https = _store(s3_server, bucket, **tls)
    seen = _uploads(https)
    https.put("packs/tls", b"c" * 100_000)
    assert seen == [("PutObject", True, "UNSIGNED-PAYLOAD")]
    assert https.get("packs/tls") == b"c" * 100_000


def test_uploads_under_object_lock_carry_md5(s3_server: S3Server) -> None:
    """An upload with an Object Lock retention carries Content-MD5 even over plain http
    (S3 requires it with Object Lock parameters)."""
    bucket = s3_server.make_bucket(object_lock=True)
    store = _store(s3_server, bucket)
    seen = _uploads(store)
    until = datetime.now(UTC) + timedelta(days=1)
    store.put("data/locked", b"precious", retention=Retention("governance", until))
    assert seen and all(md5 for _, md5, _ in seen)
    assert store.get("data/locked") == b"precious"
