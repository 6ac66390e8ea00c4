"""An S3Store on a bucket of a test server, shared by the S3 store tests."""

from __future__ import annotations

from typing import Any

from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store
from tests.fixtures.objectstores import S3Server

PART = 5 * 1024 * 1024


def s3_store(server: S3Server, bucket: str, *, shared: bool = True, **overrides: Any) -> S3Store:
    """A store on `bucket`; `shared=False` for a test that hooks into its client's events
    (a shared client is every other store's too)."""
    settings: dict[str, Any] = {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "credentials": S3Credentials(server.access_key, server.secret_key),
        "part_size": PART,
    }
    settings.update(overrides)
    return S3Store("primary", S3Settings(**settings), shared=shared)
