"""The boto3 client of an S3 store: one session per process, one client per store, with
the timeouts, pool size, TLS settings and credentials of its target. Used by `stores/s3.py`
only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig

from recoveryd.errors import StoreError
from recoveryd.stores.s3_settings import S3Settings, add_content_md5

if TYPE_CHECKING:
    from botocore.config import _S3Dict
    from mypy_boto3_s3.client import S3Client

_SESSION_LOCK = threading.Lock()
_SESSION: list[boto3.session.Session] = []


def _session() -> boto3.session.Session:
    """One boto3 session per process: loading the service model once makes clients cheap."""
    if not _SESSION:
        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


def make_client(s: S3Settings, bad_endpoint: Callable[[], StoreError]) -> S3Client:
    """A client for the store `s` describes; `bad_endpoint()` is raised for an endpoint URL
    that is not http(s).

    Over TLS no request hashes its payload for the signature (UNSIGNED-PAYLOAD, which
    SigV4 allows only there): TLS protects the bytes in flight and every upload carries
    Content-MD5, which the store checks. Over plain http every payload is signed."""
    scheme = (s.endpoint_url or "https://").partition("://")[0]
    if scheme not in ("http", "https"):
        raise bad_endpoint()
    s3_options: _S3Dict = {"addressing_style": s.addressing_style}
    if scheme == "https":
        s3_options["payload_signing_enabled"] = False
    config = BotoConfig(
        signature_version="s3v4",
        s3=s3_options,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        max_pool_connections=s.max_pool_connections,
        tcp_keepalive=True,
    )
    verify: bool | str = (s.ca_bundle or True) if s.verify_tls else False
    creds = s.credentials
    with _SESSION_LOCK:  # client creation is not thread-safe; the session caches models
        try:
            client: S3Client = _session().client(
                "s3",
                endpoint_url=s.endpoint_url,
                region_name=s.region or "us-east-1",
                aws_access_key_id=creds.access_key_id if creds else None,
                aws_secret_access_key=creds.secret_access_key if creds else None,
                verify=verify,
                config=config,
            )
        except ValueError as exc:  # botocore: "Invalid endpoint"
            raise bad_endpoint() from exc
    # Swift's s3api requires Content-MD5 on DeleteObjects; boto3 >= 1.36 sends a CRC instead.
    client.meta.events.register("before-sign.s3.DeleteObjects", add_content_md5)
    return client
