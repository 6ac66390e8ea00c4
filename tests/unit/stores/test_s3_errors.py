"""S3 error translation: every botocore failure becomes one clear product error."""

from __future__ import annotations

import botocore.exceptions as bexc
import pytest

from recoveryd.errors import (
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    TransientStoreError,
)
from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store
from recoveryd.stores.s3_settings import abort_settled

SECRET = "very-secret-key-material"


@pytest.fixture
def store() -> S3Store:
    return S3Store(
        "primary",
        S3Settings(
            bucket="backups",
            endpoint_url="https://s3.example.test",
            credentials=S3Credentials("AKID", SECRET),
        ),
    )


def client_error(code: str, status: int, message: str = "") -> bexc.ClientError:
    return bexc.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("NoSuchKey", 404), NotFoundError),
        (client_error("404", 404), NotFoundError),
        (client_error("PreconditionFailed", 412), PreconditionFailedError),
        (client_error("SlowDown", 503), TransientStoreError),
        (client_error("InternalError", 500), TransientStoreError),
        (client_error("RequestTimeout", 400), TransientStoreError),
        (client_error("Whatever", 502), TransientStoreError),
        (client_error("TooManyRequests", 429), TransientStoreError),
        (bexc.EndpointConnectionError(endpoint_url="https://s3.example.test"), TransientStoreError),
        (bexc.ReadTimeoutError(endpoint_url="https://s3.example.test"), TransientStoreError),
        (bexc.ConnectionClosedError(endpoint_url="https://s3.example.test"), TransientStoreError),
    ],
)
def test_error_kinds(store: S3Store, exc: Exception, kind: type[StoreError]) -> None:
    """Missing objects, failed conditions and transient failures map to their error types."""
    err = store._error(exc, "get", "data/x")
    assert type(err) is kind
    assert str(err).startswith("target primary:")


@pytest.mark.parametrize(
    "code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"]
)
def test_bad_credentials_say_to_check_them(store: S3Store, code: str) -> None:
    """Credential refusals are permanent, name the target and never show the secret."""
    err = store._error(client_error(code, 403, f"signature for {SECRET}"), "put", "data/x")
    assert type(err) is StoreError
    assert "check the target's access key and secret" in str(err)
    assert SECRET not in str(err)


def test_missing_bucket_is_named(store: S3Store) -> None:
    """NoSuchBucket names the bucket and the endpoint."""
    err = store._error(client_error("NoSuchBucket", 404), "put", "data/x")
    assert type(err) is StoreError
    assert str(err) == (
        "target primary: bucket backups does not exist at https://s3.example.test; "
        "create it or fix `bucket`"
    )


def test_tls_failure_suggests_ca_bundle(store: S3Store) -> None:
    """A certificate failure is permanent and points at the ca_bundle setting."""
    err = store._error(
        bexc.SSLError(endpoint_url="https://s3.example.test", error="CERTIFICATE_VERIFY_FAILED"),
        "get",
        "data/x",
    )
    assert type(err) is StoreError
    assert "set ca_bundle" in str(err)


def test_credentials_are_not_in_repr() -> None:
    """The secret key never shows in a repr (logs, tracebacks)."""
    creds = S3Credentials("AKID", SECRET)
    assert SECRET not in repr(creds)
    assert SECRET not in repr(S3Settings(bucket="b", credentials=creds))


@pytest.mark.parametrize("url", ["s3.example.org", "ftp://s3.example.org", "http://", "http://a b"])
def test_invalid_endpoint_url_is_a_clear_error(url: str) -> None:
    """A malformed endpoint_url is refused with the target's name, not a library traceback."""
    with pytest.raises(
        StoreError, match=r"target primary: endpoint_url .* is not a valid http\(s\) URL"
    ):
        S3Store("primary", S3Settings(bucket="b", endpoint_url=url))


@pytest.mark.parametrize(
    "exc",
    [
        bexc.ConnectionClosedError(endpoint_url="http://127.0.0.1:9"),
        bexc.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        bexc.ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
    ],
)
def test_an_abort_that_got_no_answer_or_a_transient_one_is_retried(exc: Exception) -> None:
    """A reset, refused or timed-out abort (botocore's connection errors carry
    `response=None`) and a 5xx answer are not settled: the abort is tried again."""
    assert not abort_settled(exc)


@pytest.mark.parametrize(
    "exc", [client_error("NoSuchUpload", 404), client_error("AccessDenied", 403)]
)
def test_an_abort_answered_for_good_is_not_retried(exc: Exception) -> None:
    """An upload already gone, or a refusal a retry cannot change, settles the abort."""
    assert abort_settled(exc)
