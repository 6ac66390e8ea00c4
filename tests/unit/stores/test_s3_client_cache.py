"""The S3 client cache: one client per endpoint, credentials and settings, shared by the
stores of a process, given back on close, never keyed by a readable secret.

The cache is tested with plain objects standing in for clients (its rule does not depend
on boto3); sharing a real client on a real store is in
tests/integration/stores/test_s3_client_reuse.py."""

from __future__ import annotations

import threading
from dataclasses import replace

from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store
from recoveryd.stores.s3_client import CLIENTS, ClientCache, client_key

SECRET = "a-secret-that-must-not-show"
SETTINGS = S3Settings(
    bucket="b", endpoint_url="https://s3.example.test", credentials=S3Credentials("AKID", SECRET)
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _cache(clock: Clock | None = None, **kw: float) -> tuple[ClientCache[object], list[object]]:
    closed: list[object] = []
    return ClientCache(closed.append, clock=clock or Clock(), **kw), closed  # type: ignore[arg-type]


def test_the_key_shows_neither_the_access_key_nor_the_secret() -> None:
    """A client key (which may be logged) holds a digest of the credentials, not them."""
    key = client_key(SETTINGS)
    assert SECRET not in repr(key) and "AKID" not in repr(key)
    assert key.credentials and len(key.credentials) == 64


def test_keys_differ_by_credentials_and_client_settings_not_by_bucket() -> None:
    """Another secret, access key, endpoint, CA or timeout is another client; another bucket
    or prefix (named by each request) or part size is the same client."""
    key = client_key(SETTINGS)
    other_secret = S3Credentials("AKID", SECRET + "x")
    assert client_key(replace(SETTINGS, credentials=other_secret)) != key
    assert client_key(replace(SETTINGS, credentials=S3Credentials("AKID2", SECRET))) != key
    assert client_key(replace(SETTINGS, credentials=None)) != key
    assert client_key(replace(SETTINGS, endpoint_url="https://other.test")) != key
    assert client_key(replace(SETTINGS, ca_bundle="/etc/ca.pem")) != key
    assert client_key(replace(SETTINGS, read_timeout=5.0)) != key
    assert client_key(replace(SETTINGS, max_pool_connections=32)) != key
    same = replace(SETTINGS, bucket="other", prefix="site-b/", part_size=8 << 20)
    assert client_key(same) == key


def test_one_client_per_key_built_once() -> None:
    """Two acquisitions of a key share the client built by the first; another key builds
    its own."""
    cache, _ = _cache()
    built: list[object] = []

    def build() -> object:
        built.append(object())
        return built[-1]

    key = client_key(SETTINGS)
    first, second = cache.acquire(key, build), cache.acquire(key, build)
    assert first is second and len(built) == 1 and cache.users(key) == 2
    other = cache.acquire(client_key(replace(SETTINGS, region="eu")), build)
    assert other is not first and len(built) == 2


def test_a_released_client_is_reused_until_idle_too_long() -> None:
    """A client no store uses is reused within the idle limit; after it, it is closed and
    a new one built (a long-idle connection may have been dropped on the way)."""
    clock = Clock()
    cache, closed = _cache(clock, idle_limit=60.0)
    key = client_key(SETTINGS)
    first = cache.acquire(key, object)
    cache.release(key, first)
    clock.now = 59.0
    assert cache.acquire(key, object) is first
    cache.release(key, first)
    clock.now = 120.0
    fresh = cache.acquire(key, object)
    assert fresh is not first and closed == [first]


def test_a_client_in_use_is_never_expired() -> None:
    """However long a store holds the client, it is not replaced under it."""
    clock = Clock()
    cache, closed = _cache(clock, idle_limit=60.0)
    key = client_key(SETTINGS)
    first = cache.acquire(key, object)
    clock.now = 1000.0
    assert cache.acquire(key, object) is first and closed == []


def test_unused_clients_beyond_the_limit_are_closed_oldest_first() -> None:
    """At most `max_idle` unused clients are kept (after credentials change, the old
    one's); the least recently used ones are closed."""
    cache, closed = _cache(max_idle=1)
    keys = [client_key(replace(SETTINGS, region=f"r{i}")) for i in range(3)]
    clients = [cache.acquire(k, object) for k in keys]
    for k, c in zip(keys, clients, strict=True):
        cache.release(k, c)
    assert closed == clients[:2]
    assert cache.acquire(keys[2], object) is clients[2]


def test_acquire_from_many_threads_builds_one_client() -> None:
    """Stores opened at the same time by several threads share one client."""
    cache, _ = _cache()
    key = client_key(SETTINGS)
    built: list[object] = []
    got: list[object] = []
    start = threading.Barrier(8)

    def build() -> object:
        built.append(object())
        return built[-1]

    def run() -> None:
        start.wait()
        got.append(cache.acquire(key, build))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(got) == 8 and cache.users(key) == 8


def test_s3_stores_share_and_give_back_the_process_client() -> None:
    """Two S3Stores of the same settings (another bucket too) hold one client; closing
    one (twice) leaves the other's; a store with `shared=False` has its own."""
    key = client_key(SETTINGS)
    before = CLIENTS.users(key)
    a = S3Store("a", SETTINGS)
    b = S3Store("b", replace(SETTINGS, bucket="other"))
    own = S3Store("c", SETTINGS, shared=False)
    assert a.client is b.client and own.client is not a.client
    assert CLIENTS.users(key) == before + 2
    a.close()
    a.close()
    assert CLIENTS.users(key) == before + 1
    b.close()
    own.close()
    assert CLIENTS.users(key) == before
