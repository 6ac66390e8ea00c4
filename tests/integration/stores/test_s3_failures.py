"""How the S3 store fails against real stores: credentials, buckets, TLS, outages, multipart."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recoveryd.errors import StoreError, TransientStoreError
from recoveryd.stores.factory import open_store
from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store
from recoveryd.stores.wrappers import RetryPolicy, innermost

from ...fixtures.objectstores import S3Server, free_port
from .s3helpers import PART, s3_store

pytestmark = pytest.mark.integration


def test_wrong_secret_is_a_clear_error_without_the_secret(s3_server: S3Server) -> None:
    """A wrong secret names the target, says to check the credentials, and leaks nothing."""
    bucket = s3_server.make_bucket()
    wrong = "wrong-" + s3_server.secret_key
    store = s3_store(s3_server, bucket, credentials=S3Credentials(s3_server.access_key, wrong))
    with pytest.raises(StoreError) as info:
        store.put("data/x", b"x")
    message = str(info.value)
    assert not isinstance(info.value, TransientStoreError)
    assert message.startswith("target primary:")
    assert "check the target's access key and secret" in message
    assert wrong not in message
    assert s3_server.secret_key not in message


def test_unknown_access_key_is_a_clear_error(s3_server: S3Server) -> None:
    """An access key the store does not know is reported like a wrong secret."""
    bucket = s3_server.make_bucket()
    store = s3_store(s3_server, bucket, credentials=S3Credentials("NOSUCHKEY", "x"))
    with pytest.raises(StoreError, match="check the target's access key and secret"):
        list(store.list())


def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    """A bucket that does not exist is named in the error, with the fix."""
    store = s3_store(s3_server, "no-such-bucket-here")
    with pytest.raises(StoreError, match="bucket no-such-bucket-here does not exist"):
        store.put("data/x", b"x")
    with pytest.raises(StoreError, match="bucket no-such-bucket-here does not exist"):
        store.exists("config")  # a HEAD 404 is not mistaken for "no such object"


def test_missing_object_in_existing_bucket_is_not_found(s3_server: S3Server) -> None:
    """In a bucket that exists, a missing key is simply absent (and stays cheap to ask)."""
    store = s3_store(s3_server, s3_server.make_bucket())
    assert not store.exists("config")
    assert not store.exists("config")


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_with_the_test_ca_works_and_fails_without_it(s3_server: S3Server) -> None:
    """TLS is verified by default: the store's CA in ca_bundle works, no CA is refused."""
    bucket = s3_server.make_bucket()
    https = s3_server.https_endpoint_url
    good = s3_store(s3_server, bucket, endpoint_url=https, ca_bundle=str(s3_server.ca_file))
    good.put("data/tls", b"secure")
    assert good.get("data/tls") == b"secure"
    unverified = s3_store(s3_server, bucket, endpoint_url=https)
    with pytest.raises(StoreError, match=r"TLS verification .* failed; set ca_bundle") as info:
        unverified.get("data/tls")
    assert not isinstance(info.value, TransientStoreError)
    insecure = s3_store(s3_server, bucket, endpoint_url=https, verify_tls=False)
    assert insecure.get("data/tls") == b"secure"


def test_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    """Nothing listening at the endpoint is a transient error (the retry wrapper retries it)."""
    store = S3Store(
        "primary",
        S3Settings(
            bucket="b",
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            credentials=S3Credentials("a", "b"),
            connect_timeout=2,
        ),
    )
    with pytest.raises(TransientStoreError, match="target primary: cannot reach"):
        store.get("data/x")


def test_stopped_gateway_fails_transiently_then_recovers(
    s3_server: S3Server, target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """While the gateway is down, operations fail as transient after bounded retries (the
    target's `attempts`: 3 tries, 2 pauses); once it is back, the same store works again."""
    spec = target_factory(s3_server.vendor)
    sleeps: list[float] = []
    store = open_store(
        "primary",
        spec.target.model_copy(update={"attempts": 3}),
        base_dir=tmp_path,
        resolve_secret=str,
        retry=RetryPolicy(),
        sleep=sleeps.append,
    )
    store.put("data/a", b"a")
    s3_server.stop()
    try:
        with pytest.raises(TransientStoreError):
            store.get("data/a")
        assert len(sleeps) == 2
    finally:
        s3_server.start()
    assert store.get("data/a") == b"a"


def test_failed_multipart_upload_leaves_no_parts(s3_server: S3Server) -> None:
    """When a part fails, the upload is aborted: no object and no multipart upload remain."""
    bucket = s3_server.make_bucket()
    store = s3_store(s3_server, bucket, shared=False)
    calls = {"n": 0}

    def fail_second_part(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionResetError("connection reset by peer (injected)")

    store.client.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    with pytest.raises(ConnectionResetError):
        store.put("packs/big", os.urandom(2 * PART + 1))
    assert calls["n"] == 2
    assert not store.exists("packs/big")
    uploads = s3_server.client().list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []


def test_stale_multipart_uploads_are_aborted(s3_server: S3Server) -> None:
    """abort_stale_multipart_uploads removes uploads a crashed process left behind."""
    bucket = s3_server.make_bucket()
    raw = s3_server.client()
    raw.create_multipart_upload(Bucket=bucket, Key="packs/orphan")
    store = s3_store(s3_server, bucket)
    assert store.abort_stale_multipart_uploads(timedelta(hours=1)) == 0
    later = datetime.now(UTC) + timedelta(hours=2)  # an injected clock, not a wait
    assert store.abort_stale_multipart_uploads(timedelta(hours=1), now=later) == 1
    assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_batch_delete_sends_content_md5(s3_server: S3Server) -> None:
    """DeleteObjects works on both vendors (Swift requires Content-MD5, added by the store)."""
    bucket = s3_server.make_bucket()
    store = s3_store(s3_server, bucket)
    for i in range(3):
        store.put(f"data/{i}", b"x")
    resp = store.client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": f"data/{i}"} for i in range(3)]}
    )
    assert resp.get("Errors", []) == []
    assert list(store.list()) == []


def test_prefix_isolates_targets_in_one_bucket(
    target_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Keys live under the target's prefix and listing never shows other prefixes."""
    spec = target_factory("ceph", prefix="site-a/")
    store = open_store("primary", spec.target, base_dir=tmp_path, resolve_secret=str)
    store.put("data/x", b"x")
    raw = spec.server.client()
    raw.put_object(Bucket=spec.target.bucket, Key="site-b/data/y", Body=b"y")
    keys = [o["Key"] for o in raw.list_objects_v2(Bucket=spec.target.bucket)["Contents"]]
    assert sorted(keys) == ["site-a/data/x", "site-b/data/y"]
    assert [i.key for i in store.list()] == ["data/x"]
    assert isinstance(innermost(store), S3Store)


def _payload_hashes(store: S3Store) -> list[str]:
    """Records the x-amz-content-sha256 header of every request the store's client sends."""
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        value = request.headers.get("X-Amz-Content-SHA256", b"")
        seen.append(value.decode() if isinstance(value, bytes) else str(value))

    store.client.meta.events.register("before-send.s3", record)
    return seen


def test_payload_is_hashed_for_the_signature_only_without_tls(s3_server: S3Server) -> None:
    """Over https the store sends UNSIGNED-PAYLOAD (TLS and Content-MD5 protect the bytes);
    over plain http every payload's SHA-256 is part of the signature."""
    bucket = s3_server.make_bucket()
    https = s3_store(
        s3_server,
        bucket,
        endpoint_url=s3_server.https_endpoint_url,
        ca_bundle=str(s3_server.ca_file),
        shared=False,
    )
    tls_hashes = _payload_hashes(https)
    https.put("packs/tls", b"x" * 100_000)
    https.delete("packs/tls")
    assert tls_hashes and set(tls_hashes) == {"UNSIGNED-PAYLOAD"}
    plain = s3_store(s3_server, bucket, shared=False)
    plain_hashes = _payload_hashes(plain)
    plain.put("packs/plain", b"y" * 100_000)
    assert plain.get_range("packs/plain", 10, 5) == b"yyyyy"
    assert plain_hashes and "UNSIGNED-PAYLOAD" not in plain_hashes
