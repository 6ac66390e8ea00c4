"""The boto3 client of an S3 store: one session per process, and one client (with its
connection pool) per endpoint, credentials and client settings, shared by every store
opened with them in this process. Used by `stores/s3.py` only.

botocore clients are thread-safe (sessions are not: clients are built under a lock), so
the stores of a backup that opens its target several times, and the jobs of a daemon,
reuse one client: no client construction and no TLS handshake again. A client no store
uses is kept for `IDLE_LIMIT` seconds (a connection idle for longer may have been dropped
silently by a firewall on the way) and at most `MAX_IDLE` of them are kept; the others
are closed. The credentials are in a cache key only as a digest keyed by a random value
of this process, so a key that is logged shows neither the access key nor the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import boto3
from botocore.config import Config as BotoConfig

from recoveryd.errors import StoreError
from recoveryd.stores.s3_settings import S3Settings, add_content_md5

if TYPE_CHECKING:
    from botocore.config import _S3Dict
    from mypy_boto3_s3.client import S3Client

IDLE_LIMIT = 180.0  # seconds; below the idle timeouts of common NAT gateways (240-350 s)
MAX_IDLE = 8  # unused clients kept (e.g. the old credentials' client after a reload)

_SESSION_LOCK = threading.Lock()
_SESSION: list[boto3.session.Session] = []
_DIGEST_KEY = os.urandom(32)  # per process: digests cannot be compared with another's

C = TypeVar("C")


def _session() -> boto3.session.Session:
    """One boto3 session per process: loading the service model once makes clients cheap."""
    if not _SESSION:
        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


@dataclass(frozen=True)
class ClientKey:
    """What makes two stores' clients interchangeable: everything the client is built
    from except the bucket and prefix (which each request names). `credentials` is a keyed
    digest of the key pair ("" for boto3's own chain), so the key is safe to log."""

    endpoint_url: str | None
    region: str
    credentials: str
    ca_bundle: str | None
    verify_tls: bool
    addressing_style: str
    max_pool_connections: int
    connect_timeout: float
    read_timeout: float


def client_key(s: S3Settings) -> ClientKey:
    """The cache key of the client `s` needs."""
    creds = ""
    if s.credentials is not None:
        pair = f"{s.credentials.access_key_id}\0{s.credentials.secret_access_key}".encode()
        creds = hmac.new(_DIGEST_KEY, pair, hashlib.sha256).hexdigest()
    return ClientKey(
        endpoint_url=s.endpoint_url,
        region=s.region or "us-east-1",
        credentials=creds,
        ca_bundle=s.ca_bundle,
        verify_tls=s.verify_tls,
        addressing_style=s.addressing_style,
        max_pool_connections=s.max_pool_connections,
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
    )


@dataclass
class _Entry(Generic[C]):
    client: C
    users: int = 0
    idle_since: float = 0.0


class ClientCache(Generic[C]):
    """Shared clients by key, counted by their users. Thread-safe.

    `acquire` returns the key's client (built by `build()` when there is none, or when
    the one there has been unused for longer than `idle_limit`); every `acquire` is
    matched by one `release`. `close(client)` is called, outside the lock, for the
    clients dropped: expired, or unused beyond the `max_idle` most recently used."""

    def __init__(
        self,
        close: Callable[[C], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_limit: float = IDLE_LIMIT,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self._close = close
        self._clock = clock
        self._idle_limit = idle_limit
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._entries: OrderedDict[ClientKey, _Entry[C]] = OrderedDict()

    def acquire(self, key: ClientKey, build: Callable[[], C]) -> C:
        dropped: list[C] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.users and self._expired(entry):
                del self._entries[key]
                dropped.append(entry.client)
                entry = None
            if entry is None:
                entry = _Entry(build())
                self._entries[key] = entry
            entry.users += 1
            self._entries.move_to_end(key)
            client = entry.client
        self._close_all(dropped)
        return client

    def _expired(self, entry: _Entry[C]) -> bool:
        return self._clock() - entry.idle_since > self._idle_limit

    def release(self, key: ClientKey, client: C) -> None:
        dropped: list[C] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.client is not client:
                return  # forgotten (a forked child's copy): not this cache's to close
            entry.users -= 1
            if not entry.users:
                entry.idle_since = self._clock()
            idle = [k for k, e in self._entries.items() if not e.users]  # oldest first
            for k in idle[: max(0, len(idle) - self._max_idle)]:
                dropped.append(self._entries.pop(k).client)
        self._close_all(dropped)

    def users(self, key: ClientKey) -> int:
        """How many stores use the key's client now (0 when none is cached)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.users if entry is not None else 0

    def forget(self) -> None:
        """Drop every client without closing it: in a forked child, whose connections
        are the parent's."""
        self._lock = threading.Lock()
        self._entries = OrderedDict()

    def _close_all(self, clients: list[C]) -> None:
        for client in clients:
            self._close(client)


def _close_client(client: S3Client) -> None:
    client.close()


CLIENTS: ClientCache[S3Client] = ClientCache(_close_client)


def _after_fork_in_child() -> None:
    global _SESSION_LOCK  # a lock held by another thread at the fork would stay held
    _SESSION_LOCK = threading.Lock()
    CLIENTS.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


def shared_client(s: S3Settings, bad_endpoint: Callable[[], StoreError]) -> S3Client:
    """The process's client for `s` (built when needed); give it back with `release`."""
    return CLIENTS.acquire(client_key(s), lambda: make_client(s, bad_endpoint))


def release(s: S3Settings, client: S3Client) -> None:
    """A store no longer uses `client` (from `shared_client(s, ...)`)."""
    CLIENTS.release(client_key(s), client)


def make_client(s: S3Settings, bad_endpoint: Callable[[], StoreError]) -> S3Client:
    """A new client for the store `s` describes; `bad_endpoint()` is raised for an endpoint
    URL that is not http(s).

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
