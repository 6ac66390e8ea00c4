"""S3 object store over boto3, for real S3-compatible stores (Ceph RGW, Swift s3api, AWS...).

The one home of boto3 in the product. Dialect choices that make non-AWS stores
work: checksums only when an operation requires them (Swift rejects aws-chunked
payloads), path-style addressing by default, Content-MD5 on uploads whose payload the
signature does not cover (https: UNSIGNED-PAYLOAD) and on every upload under Object Lock
(which requires it); over plain http the signed SHA-256 of the payload, which the store
checks, already covers the bytes in flight. TLS verification on
(`ca_bundle` for a private CA). botocore's own retries are off: the
RetryingStore wrapper decides what to retry, on TransientStoreError only.

Capabilities are probed, never assumed:
- conditional put: the first `if_absent` put tries `If-None-Match: *`; a store
  that answers NotImplemented (Swift) is remembered as not supporting it and
  gets a best-effort check-then-put from then on.
- Object Lock: a small object under `probes/lock-*` is written with a one-day
  GOVERNANCE retention, then its version is deleted without bypass. Only a
  refused delete counts as enforcement (Swift accepts the headers and deletes
  anyway). The probe is then removed with the governance bypass.

Conditional puts of objects larger than `part_size` (multipart) are always a
best-effort check-then-put, like every conditional put on Swift.

Deleting from a versioned bucket (every Object Lock bucket is) removes every
version of the key, so prune frees space instead of leaving delete markers; a
version under retention makes `delete` raise StoreError.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bexc

from recoveryd.errors import NotFoundError, PreconditionFailedError, StoreError, TransientStoreError
from recoveryd.stores.base import Capabilities, ObjectInfo, Retention
from recoveryd.stores.s3_client import make_client, release, shared_client
from recoveryd.stores.s3_errors import BOTO_ERRORS, Place, translate
from recoveryd.stores.s3_settings import (
    LOCKED,
    MIN_PART_SIZE,
    NO_RETENTION,
    NOT_FOUND,
    PROBE_PREFIX,
    UNAUTHENTICATED,
    UPLOAD_CLOCK_SLACK,
    LockProbe,
    S3Credentials,
    S3Settings,
    abort_settled,
    error_code,
    md5_b64,
    retention_args,
    retried,
)

__all__ = ["LockProbe", "S3Credentials", "S3Settings", "S3Store"]

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectLockRetentionTypeDef


_error_code = error_code


class S3Store:
    """ObjectStore on one bucket (and prefix) of an S3-compatible store. Thread-safe.

    Its client (and connection pool) is the one every store of this process with the same
    endpoint, credentials and client settings shares (`stores/s3_client.py`); `close()`
    gives it back. `shared=False` builds a client of its own (closed by `close()`), for
    callers that hook into the client's events."""

    def __init__(self, name: str, settings: S3Settings, *, shared: bool = True) -> None:
        self.name = name
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/") + "/" if settings.prefix.strip("/") else ""
        where = settings.endpoint_url or "the default S3 endpoint"
        self._place = Place(name, where, self.bucket, self.prefix)
        # over plain http the signature covers the payload's SHA-256 (s3_client.py)
        self._signed_payload = (settings.endpoint_url or "").lower().startswith("http://")
        self._lock = threading.Lock()
        self._conditional: bool | None = None
        self._lock_probe: LockProbe | None = None
        self._versioned: bool | None = None
        self._bucket_seen = False
        self._shared = shared
        self._open = True
        get_client = shared_client if shared else make_client
        self.client: S3Client = get_client(self.settings, self._bad_endpoint)

    # ------------------------------------------------------------------ errors

    def _bad_endpoint(self) -> StoreError:
        return StoreError(
            f"target {self.name}: endpoint_url {self.settings.endpoint_url!r} is not a valid "
            "http(s) URL; use e.g. https://s3.example.org:7480"
        )

    def _error(self, exc: Exception, op: str, key: str | None = None) -> StoreError:
        """Translate a boto3/botocore failure into the product's error tree."""
        return translate(exc, self._place, op, key)

    def _call(self, op: str, key: str | None, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (bexc.BotoCoreError, bexc.ClientError) as exc:
            raise self._error(exc, op, key) from exc

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> bytes:
        def run() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            with body:
                return body.read()

        data: bytes = self._call("get", key, run)
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            self.stat(key)
            return b""

        def run() -> bytes:
            try:
                resp = self.client.get_object(
                    Bucket=self.bucket,
                    Key=self.prefix + key,
                    Range=f"bytes={offset}-{offset + length - 1}",
                )
            except bexc.ClientError as exc:
                if _error_code(exc)[0] == "InvalidRange":  # offset at or past the end
                    return b""
                raise
            body = resp["Body"]  # botocore's StreamingBody: it checks the length and wraps
            with body:  # a broken read (`with ... as` would bind the raw urllib3 stream)
                return body.read()[:length]

        data: bytes = self._call("get_range", key, run)
        return data

    def stat(self, key: str) -> ObjectInfo:
        try:
            resp = self._call(
                "stat",
                key,
                lambda: self.client.head_object(Bucket=self.bucket, Key=self.prefix + key),
            )
        except NotFoundError:
            self._check_bucket()  # a HEAD 404 does not say whether the key or the bucket is missing
            raise
        return ObjectInfo(key=key, size=int(resp["ContentLength"]))

    def _check_bucket(self) -> None:
        """Raise the missing-bucket error once if the bucket is absent (checked once per store)."""
        if self._bucket_seen:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except bexc.ClientError as exc:
            if _error_code(exc)[1] == 404:
                raise self._error(
                    bexc.ClientError({"Error": {"Code": "NoSuchBucket"}}, "HeadBucket"),
                    "head bucket",
                ) from exc
            return
        except bexc.BotoCoreError:
            return
        self._bucket_seen = True

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        cut = len(self.prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=obj["Key"][cut:],
                        size=int(obj["Size"]),
                        modified=obj.get("LastModified"),
                    )
        except (bexc.BotoCoreError, bexc.ClientError) as exc:
            raise self._error(exc, "list", prefix) from exc

    # ------------------------------------------------------------------ writes

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        lock_args = retention_args(retention)
        if len(data) > max(self.settings.part_size, MIN_PART_SIZE):
            if if_absent and self.exists(key):
                raise PreconditionFailedError(f"target {self.name}: object {key} already exists")
            self._put_multipart(key, data, lock_args)
            return
        if (
            if_absent
            and self._conditional is not False
            and self._put_conditional(key, data, lock_args)
        ):
            return
        if if_absent and self.exists(key):  # best effort on stores without conditional writes
            raise PreconditionFailedError(f"target {self.name}: object {key} already exists")
        self._call("put", key, lambda: self._put_object(key, data, lock_args))

    def _md5(self, data: bytes, extra: dict[str, Any]) -> dict[str, Any]:
        """Content-MD5 for an upload, unless the signed payload hash covers it already."""
        if self._signed_payload and "ObjectLockMode" not in extra:
            return {}
        return {"ContentMD5": md5_b64(data)}

    def _put_object(self, key: str, data: bytes, extra: dict[str, Any]) -> Any:
        return self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, **self._md5(data, extra), **extra
        )

    def _put_conditional(self, key: str, data: bytes, extra: dict[str, Any]) -> bool:
        """Put with If-None-Match: *; False when the store does not implement it."""
        try:
            self._put_object(key, data, {**extra, "IfNoneMatch": "*"})
        except bexc.ClientError as exc:
            code, status = _error_code(exc)
            if code == "NotImplemented" or status == 501:
                self._conditional = False
                return False
            raise self._error(exc, "put", key) from exc
        except bexc.BotoCoreError as exc:
            raise self._error(exc, "put", key) from exc
        self._conditional = True
        return True

    def _put_multipart(self, key: str, data: bytes, extra: dict[str, Any]) -> None:
        """Upload in parts; any failure aborts the upload so that no parts are left behind."""
        full_key = self.prefix + key
        size = max(self.settings.part_size, MIN_PART_SIZE)
        upload_id = self._create_upload(key, full_key, extra)
        try:
            parts = []
            for number, offset in enumerate(range(0, len(data), size), start=1):
                part = data[offset : offset + size]
                resp = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                    **self._md5(part, extra),
                )
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except BaseException as exc:
            self._abort(full_key, upload_id)
            if isinstance(exc, bexc.ClientError) and _error_code(exc)[0] == "NoSuchUpload":
                raise TransientStoreError(
                    f"target {self.name}: the upload of {key} vanished part way; retry"
                ) from exc
            if isinstance(exc, bexc.BotoCoreError | bexc.ClientError):
                raise self._error(exc, "put", key) from exc
            raise

    def _create_upload(self, key: str, full_key: str, extra: dict[str, Any]) -> str:
        """Start a multipart upload. When the answer is lost (reset, timeout, 5xx) the
        store may have created it anyway: uploads of this key begun since are aborted, so
        none is left behind (another writer of the same content-addressed key would see
        its upload vanish, which is transient: it starts over)."""
        since = datetime.now(UTC) - UPLOAD_CLOCK_SLACK
        try:
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=full_key, **extra)
        except (bexc.BotoCoreError, bexc.ClientError) as exc:
            error = self._error(exc, "put", key)
            if error.transient:
                self._abort_uploads_since(full_key, since)
            raise error from exc
        return str(upload["UploadId"])

    def _abort_uploads_since(self, full_key: str, since: datetime) -> None:
        listing = retried(
            lambda: self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full_key),
            BOTO_ERRORS,
        )
        for up in listing.get("Uploads", []) if listing else []:
            if up["Key"] == full_key and up["Initiated"] >= since:
                self._abort(full_key, up["UploadId"])

    def _abort(self, full_key: str, upload_id: str) -> None:
        """Abort an upload, retrying what fails transiently: the network that broke the
        upload often breaks the first abort too. The original failure is what is raised;
        an abort that still fails is left to abort_stale_multipart_uploads() (prune)."""
        abort = self.client.abort_multipart_upload
        retried(
            lambda: abort(Bucket=self.bucket, Key=full_key, UploadId=upload_id),
            BOTO_ERRORS,
            abort_settled,
        )

    def abort_stale_multipart_uploads(
        self, older_than: timedelta = timedelta(hours=24), *, now: datetime | None = None
    ) -> int:
        """Abort unfinished multipart uploads under the prefix started before `older_than` ago."""
        cutoff = (now or datetime.now(UTC)) - older_than
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for up in page.get("Uploads", []):
                    if up["Initiated"] <= cutoff:
                        self._abort(up["Key"], up["UploadId"])
                        aborted += 1
        except (bexc.BotoCoreError, bexc.ClientError) as exc:
            raise self._error(exc, "list multipart uploads") from exc
        return aborted

    def delete(self, key: str) -> None:
        full_key = self.prefix + key
        if not self._is_versioned():
            self._delete_version(key, None)
            return
        resp = self._call(
            "delete",
            key,
            lambda: self.client.list_object_versions(Bucket=self.bucket, Prefix=full_key),
        )
        versions = [
            v["VersionId"]
            for v in [*resp.get("Versions", []), *resp.get("DeleteMarkers", [])]
            if v["Key"] == full_key
        ]
        for version in versions or [None]:
            self._delete_version(key, version)

    def _delete_version(self, key: str, version: str | None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key}
        if version is not None:
            kwargs["VersionId"] = version
        try:
            self.client.delete_object(**kwargs)
        except bexc.ClientError as exc:
            code, _ = _error_code(exc)
            if code in NOT_FOUND:
                return
            if code in LOCKED and version is not None:
                raise StoreError(
                    f"target {self.name}: object {key} is under Object Lock retention "
                    "and cannot be deleted yet"
                ) from exc
            raise self._error(exc, "delete", key) from exc
        except bexc.BotoCoreError as exc:
            raise self._error(exc, "delete", key) from exc

    def _is_versioned(self) -> bool:
        if self._versioned is None:
            try:
                status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            except bexc.ClientError as exc:
                if _error_code(exc)[0] in ("NoSuchBucket", *UNAUTHENTICATED):
                    raise self._error(exc, "get bucket versioning") from exc
                status = None  # a store without versioning support
            except bexc.BotoCoreError as exc:
                raise self._error(exc, "get bucket versioning") from exc
            self._versioned = status in ("Enabled", "Suspended")
        return self._versioned

    # ------------------------------------------------------------------ Object Lock

    def extend_retention(self, key: str, retention: Retention) -> None:
        full_key = self.prefix + key
        try:
            current = self.client.get_object_retention(Bucket=self.bucket, Key=full_key)
            until = current.get("Retention", {}).get("RetainUntilDate")
            mode = current.get("Retention", {}).get("Mode")
        except bexc.ClientError as exc:
            if _error_code(exc)[0] not in NO_RETENTION:
                raise self._error(exc, "get retention", key) from exc
            until, mode = None, None
        except bexc.BotoCoreError as exc:
            raise self._error(exc, "get retention", key) from exc
        if until is not None and until >= retention.until:
            return
        keep_compliance = mode == "COMPLIANCE" or retention.mode == "compliance"
        new: ObjectLockRetentionTypeDef = {
            "Mode": "COMPLIANCE" if keep_compliance else "GOVERNANCE",
            "RetainUntilDate": retention.until,
        }
        self._call(
            "extend retention",
            key,
            lambda: self.client.put_object_retention(
                Bucket=self.bucket, Key=full_key, Retention=new
            ),
        )

    def probe_object_lock(self) -> LockProbe:
        """Write a governance-locked probe, try to delete its version (see module docstring)."""
        with self._lock:
            if self._lock_probe is None:
                self._lock_probe = self._run_lock_probe()
            return self._lock_probe

    def _run_lock_probe(self) -> LockProbe:
        key = f"{self.prefix}{PROBE_PREFIX}lock-{uuid.uuid4().hex}"
        until = datetime.now(UTC) + timedelta(days=1)
        data = b"recoveryd object lock probe\n"
        try:
            resp = self._put_object(
                key[len(self.prefix) :],
                data,
                {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until},
            )
        except bexc.ClientError as exc:
            code, status = _error_code(exc)
            if code in UNAUTHENTICATED or code == "NoSuchBucket" or status >= 500:
                raise self._error(exc, "object lock probe") from exc
            return "unsupported"  # InvalidRequest: bucket without Object Lock; or no permission
        except bexc.BotoCoreError as exc:
            raise self._error(exc, "object lock probe") from exc
        version = resp.get("VersionId")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        try:
            self.client.delete_object(**kwargs)
        except bexc.ClientError:
            self._cleanup_probe(kwargs)
            return "enforced"
        except bexc.BotoCoreError as exc:
            raise self._error(exc, "object lock probe") from exc
        return "not_enforced"

    def _cleanup_probe(self, kwargs: dict[str, Any]) -> None:
        # Without bypass permission the probe expires with its one-day retention.
        with contextlib.suppress(bexc.BotoCoreError, bexc.ClientError):
            self.client.delete_object(**kwargs, BypassGovernanceRetention=True)

    def probe_conditional_put(self) -> bool:
        """Whether `If-None-Match: *` is enforced (probed once with a throw-away object)."""
        if self._conditional is None:
            key = f"{PROBE_PREFIX}put-{uuid.uuid4().hex}"
            try:
                if self._put_conditional(key, b"probe", {}):
                    try:
                        self._put_conditional(key, b"probe", {})
                        self._conditional = False  # accepted a second time: not enforced
                    except PreconditionFailedError:
                        self._conditional = True
            finally:
                with contextlib.suppress(StoreError):  # e.g. a bucket default retention
                    self.delete(key)
        return bool(self._conditional)

    def capabilities(self) -> Capabilities:
        return Capabilities(
            conditional_put=self.probe_conditional_put(),
            object_lock=self.probe_object_lock() == "enforced",
        )

    def close(self) -> None:
        """Give the shared client back (close a private one); idempotent."""
        with self._lock:
            was_open, self._open = self._open, False
        if not was_open:
            return
        if self._shared:
            release(self.settings, self.client)
        else:
            self.client.close()
