"""Cross-cutting store behaviour as wrappers that are ObjectStores themselves.

- RetryingStore: retries TransientStoreError (and only that) with exponential
  backoff and full jitter, a bounded number of attempts; sleep is injectable.
- ThrottledStore: caps the bytes moved per second (uploads and downloads) with
  a `flow.TokenBucket` shared by all threads using the store.

Given the run's `cancel` event (a backup's stop), the backoff and the bucket wait on
it, and a stop ends either wait at once with InterruptedOperation.

Both keep the wrapped store in `.inner`; `innermost(store)` unwraps all layers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from recoveryd.errors import PreconditionFailedError, TransientStoreError
from recoveryd.flow import TokenBucket, interruptible_wait
from recoveryd.stores.base import Capabilities, ObjectInfo, ObjectStore, Retention

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `attempts` tries; the n-th wait is uniform in [0, min(max_delay, base * 2**n)]."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, retry: int, rand: float) -> float:
        return rand * min(self.max_delay, self.base_delay * 2.0**retry)


class RetryingStore:
    """Retries transient failures of the wrapped store; other errors pass through at once."""

    def __init__(
        self,
        inner: ObjectStore,
        policy: RetryPolicy = RetryPolicy(),
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        cancel: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.policy = policy
        self.cancel = cancel
        self._sleep = sleep
        self._rand = rand

    def _retry(self, fn: Callable[[], T]) -> T:
        retry = 0
        while True:
            try:
                return fn()
            except TransientStoreError:
                retry += 1
                if retry >= self.policy.attempts:
                    raise
                delay = self.policy.delay(retry - 1, self._rand())
                interruptible_wait(delay, self.cancel, self._sleep)

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        attempted = False

        def once() -> None:
            nonlocal attempted
            try:
                self.inner.put(key, data, if_absent=if_absent, retention=retention)
            except PreconditionFailedError:
                # A retried conditional put may find the object that our own failed attempt wrote.
                if attempted and self.inner.get(key) == data:
                    return
                raise
            finally:
                attempted = True

        self._retry(once)

    def get(self, key: str) -> bytes:
        return self._retry(lambda: self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._retry(lambda: self.inner.get_range(key, offset, length))

    def stat(self, key: str) -> ObjectInfo:
        return self._retry(lambda: self.inner.stat(key))

    def exists(self, key: str) -> bool:
        return self._retry(lambda: self.inner.exists(key))

    def delete(self, key: str) -> None:
        self._retry(lambda: self.inner.delete(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Materialized so that a failure mid-listing can restart without duplicates.
        return iter(self._retry(lambda: list(self.inner.list(prefix))))

    def extend_retention(self, key: str, retention: Retention) -> None:
        self._retry(lambda: self.inner.extend_retention(key, retention))

    def capabilities(self) -> Capabilities:
        return self._retry(self.inner.capabilities)

    def close(self) -> None:
        self.inner.close()


class ThrottledStore:
    """Limits the bandwidth of puts and gets to the bucket's rate (bytes per second)."""

    def __init__(self, inner: ObjectStore, bucket: TokenBucket) -> None:
        self.inner = inner
        self.name = inner.name
        self.bucket = bucket

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        self.bucket.take(len(data))
        self.inner.put(key, data, if_absent=if_absent, retention=retention)

    def get(self, key: str) -> bytes:
        data = self.inner.get(key)
        self.bucket.take(len(data))
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        data = self.inner.get_range(key, offset, length)
        self.bucket.take(len(data))
        return data

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def extend_retention(self, key: str, retention: Retention) -> None:
        self.inner.extend_retention(key, retention)

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    def close(self) -> None:
        self.inner.close()


def innermost(store: ObjectStore) -> ObjectStore:
    """The store under every wrapper (e.g. to reach S3Store.abort_stale_multipart_uploads)."""
    while isinstance(store, RetryingStore | ThrottledStore):
        store = store.inner
    return store
