"""What the S3 store is configured with, and what the answers of an S3 store mean.

Plain data and pure functions, no boto3 (which lives in `stores/s3.py` only).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

from recoveryd.errors import NotFoundError, PreconditionFailedError, StoreError, TransientStoreError
from recoveryd.stores.base import Retention

LockProbe = Literal["enforced", "not_enforced", "unsupported"]

MIN_PART_SIZE = 5 * 1024 * 1024
ABORT_ATTEMPTS = 5
UPLOAD_CLOCK_SLACK = timedelta(minutes=2)  # the store's clock against ours
# Capability probes live outside `locks/` so that a lock reader never mistakes one for a lock.
PROBE_PREFIX = "probes/"
NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}
    | {"ExpiredToken", "InvalidClientTokenId", "AuthorizationHeaderMalformed"}
)
UNAUTHENTICATED = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"})
TRANSIENT = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed"}
    | {"InternalError", "ServiceUnavailable", "ServiceUnavailableException", "503", "500"}
)
NO_RETENTION = frozenset(
    {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "InvalidRequest"}
)
LOCKED = frozenset({"AccessDenied", "ObjectLocked", "InvalidRequest"})


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair; the secret never appears in repr()."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach the bucket (see config.S3Target)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    credentials: S3Credentials | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    part_size: int = 16 * 1024 * 1024
    max_pool_connections: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def retention_args(retention: Retention | None) -> dict[str, Any]:
    if retention is None:
        return {}
    return {
        "ObjectLockMode": retention.mode.upper(),
        "ObjectLockRetainUntilDate": retention.until,
    }


def add_content_md5(request: Any, **_: Any) -> None:
    """botocore `before-sign` hook: a Content-MD5 header computed from the request body."""
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes | bytearray):
        request.headers["Content-MD5"] = md5_b64(bytes(body))


@dataclass(frozen=True)
class S3Answer:
    """An S3 error answer: its code, HTTP status and message."""

    code: str
    status: int
    message: str = ""

    def error(
        self, *, target: str, where: str, bucket: str, what: str, key: str | None
    ) -> StoreError:
        """The product's error for this answer to `what` (on `key`) at `target`."""
        code, status = self.code, self.status
        if code in NOT_FOUND or (status == 404 and code != "NoSuchBucket"):
            return NotFoundError(f"{target}: object {key} not found")
        if code == "NoSuchBucket":
            return StoreError(
                f"{target}: bucket {bucket} does not exist at {where}; create it or fix `bucket`"
            )
        if code in BAD_CREDENTIALS or status == 403:
            return StoreError(
                f"{target}: {where} refused the credentials ({code or status}); "
                "check the target's access key and secret"
            )
        if code in ("PreconditionFailed", "412") or status == 412:
            return PreconditionFailedError(f"{target}: object {key} already exists")
        if code in TRANSIENT or status >= 500 or status == 429:
            return TransientStoreError(f"{target}: {what} failed ({code or status}); retry later")
        return StoreError(f"{target}: {what} failed: {code or status} {self.message}".rstrip())


T = TypeVar("T")


def error_code(exc: Any) -> tuple[str, int]:
    """The code and HTTP status of a botocore ClientError; ("", 0) for an error without an
    answer (a connection closed or reset before the store replied)."""
    response = getattr(exc, "response", None) or {}
    err = response.get("Error", {})
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(err.get("Code", "")), status


def retried(
    call: Callable[[], T],
    errors: tuple[type[Exception], ...],
    settled: Callable[[Exception], bool] = lambda _exc: False,
) -> T | None:
    """`call`, tried up to ABORT_ATTEMPTS times with a growing pause while it raises one of
    `errors` that is not `settled` (retrying cannot change it); None when it never succeeded."""
    for attempt in range(ABORT_ATTEMPTS):
        try:
            return call()
        except errors as exc:
            if settled(exc):
                return None
        time.sleep(0.1 * 2**attempt)
    return None


def abort_settled(exc: Exception) -> bool:
    """An abort's failure that a retry cannot change: the upload is gone, or the store's
    answer is not transient. A failure without an answer (the network) is retried."""
    code, status = error_code(exc)
    if not code and not status:  # no answer: botocore's connection errors carry response=None
        return False
    return code == "NoSuchUpload" or not (code in TRANSIENT or status >= 500)
