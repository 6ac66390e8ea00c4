"""Build the ObjectStore of a configured target: credentials, TLS, retry and bandwidth.

`open_store` is what `app.py` calls for every target. The result is
`RetryingStore(ThrottledStore(<FilesystemStore | S3Store>))` (the throttle only
when `max_bandwidth` is set). When the target configures `object_lock`, the
store is probed once and refused unless it really enforces Object Lock.
"""

from __future__ import annotations

import configparser
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from recoveryd.config import FilesystemTarget, S3Target
from recoveryd.errors import StoreError
from recoveryd.flow import TokenBucket
from recoveryd.secrets import refuse_world_readable, register, secret_path
from recoveryd.stores.base import ObjectStore
from recoveryd.stores.filesystem import FilesystemStore
from recoveryd.stores.wrappers import RetryingStore, RetryPolicy, ThrottledStore

if TYPE_CHECKING:
    from recoveryd.stores.s3 import S3Credentials, S3Store


def open_store(
    name: str,
    target: S3Target | FilesystemTarget,
    *,
    base_dir: Path,
    resolve_secret: Callable[[str], str],
    retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
    sleep: Callable[[float], None] = time.sleep,
    check_object_lock: bool = True,
    cancel: threading.Event | None = None,
) -> ObjectStore:
    """The store of target `name`, wrapped with retries (and a bandwidth cap if configured).

    `cancel` is the stop of the run the store is for: once it is set, a wait for bandwidth
    or before a retry ends at once with InterruptedOperation (None: they always run out).

    An S3 target's `attempts` replaces the number of tries of `retry`, so that with its
    `connect_timeout` and `read_timeout` a store that stops answering fails a request in
    bounded time.

    Raises StoreError naming the target when credentials cannot be read, or when
    `object_lock` is configured but the store does not enforce it.
    """
    store: ObjectStore
    if isinstance(target, FilesystemTarget):
        store = FilesystemStore(_resolve_path(target.path, base_dir), name)
    else:
        s3 = _open_s3(name, target, base_dir, resolve_secret)
        if target.object_lock is not None and check_object_lock:
            _require_object_lock(name, s3, target.bucket)
        store = s3
        retry = replace(retry, attempts=target.attempts)
    if target.max_bandwidth:
        bucket = TokenBucket(float(target.max_bandwidth), sleep=sleep, cancel=cancel)
        store = ThrottledStore(store, bucket)
    return RetryingStore(store, retry, sleep=sleep, cancel=cancel)


def _resolve_path(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _open_s3(
    name: str, target: S3Target, base_dir: Path, resolve_secret: Callable[[str], str]
) -> S3Store:
    # Imported here so that boto3 is loaded only when an S3 target is used.
    from recoveryd.stores.s3 import S3Settings, S3Store

    ca_bundle = None
    if target.ca_bundle:
        ca_path = _resolve_path(target.ca_bundle, base_dir)
        if not ca_path.is_file():
            raise StoreError(
                f"target {name}: ca_bundle {ca_path}: not found; point it at the PEM file "
                "of the CA that signed the store's certificate"
            )
        ca_bundle = str(ca_path)
    settings = S3Settings(
        bucket=target.bucket,
        prefix=target.prefix,
        endpoint_url=target.endpoint_url,
        region=target.region,
        credentials=load_credentials(name, target, base_dir, resolve_secret),
        ca_bundle=ca_bundle,
        verify_tls=target.verify_tls,
        addressing_style=target.addressing_style,
        part_size=target.part_size,
        max_pool_connections=max(10, 2 * target.upload_concurrency),
        connect_timeout=target.connect_timeout,
        read_timeout=target.read_timeout,
    )
    return S3Store(name, settings)


def load_credentials(
    name: str, target: S3Target, base_dir: Path, resolve_secret: Callable[[str], str]
) -> S3Credentials | None:
    """The key pair from `credentials_file` or the two secret references; None = boto3's chain."""
    from recoveryd.stores.s3 import S3Credentials

    if target.credentials_file:
        setting = f"targets.{name}.credentials_file"
        path = secret_path(target.credentials_file, base_dir, setting=setting)
        refuse_world_readable(path, f"{setting}:")
        return _read_credentials_file(name, path)
    if target.access_key_id and target.secret_access_key:
        return S3Credentials(
            access_key_id=resolve_secret(target.access_key_id),
            secret_access_key=resolve_secret(target.secret_access_key),
        )
    if target.access_key_id or target.secret_access_key:
        raise StoreError(
            f"target {name}: set both access_key_id and secret_access_key (or credentials_file)"
        )
    return None


def _read_credentials_file(name: str, path: Path) -> S3Credentials:
    from recoveryd.stores.s3 import S3Credentials

    where = f"target {name}: credentials_file {path}"
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise StoreError(f"{where}: not found; create it or fix the path") from exc
    except PermissionError as exc:
        raise StoreError(f"{where}: permission denied; make it readable by recoveryd") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{where}: cannot be read; check the file") from exc
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise StoreError(f"{where}: not an INI file with a [default] section") from exc
    section = parser["default"] if parser.has_section("default") else None
    key_id = section.get("aws_access_key_id", "").strip() if section else ""
    secret = section.get("aws_secret_access_key", "").strip() if section else ""
    if not key_id or not secret:
        raise StoreError(
            f"{where}: needs aws_access_key_id and aws_secret_access_key in its [default] section"
        )
    register(key_id, secret)
    return S3Credentials(access_key_id=key_id, secret_access_key=secret)


def _require_object_lock(name: str, store: S3Store, bucket: str) -> None:
    probe = store.probe_object_lock()
    if probe == "enforced":
        return
    if probe == "not_enforced":
        raise StoreError(
            f"target {name}: the store accepts Object Lock headers but does not enforce them; "
            "remove object_lock from this target or use a store that enforces retention"
        )
    raise StoreError(
        f"target {name}: object_lock is configured but bucket {bucket} has no Object Lock; "
        "create the bucket with Object Lock enabled or remove object_lock"
    )
