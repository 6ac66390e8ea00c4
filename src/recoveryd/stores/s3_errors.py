"""A boto3/botocore failure of an S3 store, translated into the product's error tree: one
sentence naming the target, the operation and the object, and what to do."""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions as bexc

from recoveryd.errors import StoreError, TransientStoreError
from recoveryd.stores.s3_settings import S3Answer, error_code

BOTO_ERRORS = (bexc.BotoCoreError, bexc.ClientError)


@dataclass(frozen=True)
class Place:
    """Where a store's requests go, as its errors name it."""

    target: str  # the target's name in the configuration
    where: str  # the endpoint, as shown to an operator
    bucket: str
    prefix: str


def translate(exc: Exception, place: Place, op: str, key: str | None = None) -> StoreError:
    """The StoreError (TransientStoreError when retrying may help) for `exc`."""
    what = f"{op} {place.bucket}/{place.prefix}{key}" if key is not None else op
    target = f"target {place.target}"
    if isinstance(exc, bexc.SSLError):
        return StoreError(
            f"{target}: TLS verification of {place.where} failed; set ca_bundle to the "
            "CA certificate that signed the store's certificate"
        )
    if isinstance(exc, bexc.NoCredentialsError):
        return StoreError(
            f"{target}: no credentials; set credentials_file or access_key_id/secret_access_key"
        )
    if isinstance(exc, bexc.ConnectionError | bexc.HTTPClientError):
        return TransientStoreError(f"{target}: cannot reach {place.where} ({op}): {exc}")
    if not isinstance(exc, bexc.ClientError):
        return StoreError(f"{target}: {what} failed: {exc}")
    code, status = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    answer = S3Answer(code, status, message)
    return answer.error(target=target, where=place.where, bucket=place.bucket, what=what, key=key)
