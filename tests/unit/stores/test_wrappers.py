"""Retry and bandwidth wrappers: what is retried, how long it waits, how fast bytes move."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoveryd.errors import (
    InterruptedOperation,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    TransientStoreError,
)
from recoveryd.flow import TokenBucket
from recoveryd.stores.base import Capabilities, ObjectInfo, ObjectStore, Retention
from recoveryd.stores.filesystem import FilesystemStore
from recoveryd.stores.wrappers import RetryingStore, RetryPolicy, ThrottledStore, innermost


class FlakyStore:
    """Fails the first `failures` calls of every operation with `error`, then delegates."""

    def __init__(self, inner: ObjectStore, failures: int, error: Exception) -> None:
        self.inner = inner
        self.name = inner.name
        self.failures = failures
        self.error = error
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        self._maybe_fail()
        self.inner.put(key, data, if_absent=if_absent, retention=retention)

    def get(self, key: str) -> bytes:
        self._maybe_fail()
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self._maybe_fail()
        return self.inner.get_range(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        self._maybe_fail()
        return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        self._maybe_fail()
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self._maybe_fail()
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._maybe_fail()
        return self.inner.list(prefix)

    def extend_retention(self, key: str, retention: Retention) -> None:
        self._maybe_fail()
        self.inner.extend_retention(key, retention)

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def fs(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "store", "t")


def test_transient_errors_are_retried_until_success(fs: FilesystemStore) -> None:
    """Two transient failures then success: the caller sees only the success."""
    flaky = FlakyStore(fs, 2, TransientStoreError("503"))
    sleeps: list[float] = []
    store = RetryingStore(flaky, RetryPolicy(attempts=5), sleep=sleeps.append, rand=lambda: 1.0)
    store.put("a", b"x")
    assert fs.get("a") == b"x"
    assert flaky.calls == 3
    assert sleeps == [0.25, 0.5]


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """Waits double each retry (full jitter scales them) and never exceed max_delay."""
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(n, 1.0) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(3, 0.5) == 2.5


def test_attempts_are_bounded(fs: FilesystemStore) -> None:
    """A store that keeps failing transiently gives up after `attempts` tries."""
    flaky = FlakyStore(fs, 100, TransientStoreError("timeout"))
    sleeps: list[float] = []
    store = RetryingStore(flaky, RetryPolicy(attempts=4), sleep=sleeps.append)
    with pytest.raises(TransientStoreError):
        store.get("a")
    assert flaky.calls == 4
    assert len(sleeps) == 3


@pytest.mark.timeout(60)
def test_a_stop_ends_the_backoff_before_a_retry(fs: FilesystemStore) -> None:
    """With the run's cancel event set, a transient failure is not retried after a backoff
    of up to an hour: InterruptedOperation at once, the injected sleep unused, one try."""
    flaky = FlakyStore(fs, 1, TransientStoreError("503"))
    sleeps: list[float] = []
    cancel = threading.Event()
    cancel.set()
    policy = RetryPolicy(attempts=5, base_delay=3600.0, max_delay=3600.0)
    store = RetryingStore(flaky, policy, sleep=sleeps.append, rand=lambda: 1.0, cancel=cancel)
    with pytest.raises(InterruptedOperation):
        store.put("a", b"x")
    assert flaky.calls == 1
    assert sleeps == []
    assert not fs.exists("a")


@pytest.mark.parametrize(
    "error",
    [StoreError("bad credentials"), NotFoundError("missing"), PreconditionFailedError("exists")],
)
def test_permanent_errors_are_not_retried(fs: FilesystemStore, error: StoreError) -> None:
    """Only transient errors are retried: others surface at once, without sleeping."""
    flaky = FlakyStore(fs, 1, error)
    sleeps: list[float] = []
    store = RetryingStore(flaky, sleep=sleeps.append)
    with pytest.raises(type(error)):
        store.delete("a")
    assert flaky.calls == 1
    assert sleeps == []


def test_retried_conditional_put_accepts_its_own_earlier_write(fs: FilesystemStore) -> None:
    """If a conditional put failed transiently after storing, the retry does not fail on it."""

    class StoresThenFails(FlakyStore):
        def put(
            self,
            key: str,
            data: bytes,
            *,
            if_absent: bool = False,
            retention: Retention | None = None,
        ) -> None:
            self.calls += 1
            self.inner.put(key, data, if_absent=if_absent, retention=retention)
            if self.calls == 1:
                raise TransientStoreError("connection reset after the upload")

    store = RetryingStore(StoresThenFails(fs, 0, TransientStoreError("x")), sleep=lambda _: None)
    store.put("locks/x", b"mine", if_absent=True)
    assert fs.get("locks/x") == b"mine"
    fs.put("locks/y", b"theirs")
    with pytest.raises(PreconditionFailedError):
        store.put("locks/y", b"mine", if_absent=True)


def test_listing_is_retried_as_a_whole(fs: FilesystemStore) -> None:
    """A listing that fails transiently is restarted and yields each key once."""
    for k in ("a/1", "a/2"):
        fs.put(k, b"x")
    store = RetryingStore(FlakyStore(fs, 1, TransientStoreError("x")), sleep=lambda _: None)
    assert sorted(i.key for i in store.list("a/")) == ["a/1", "a/2"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bandwidth_cap_paces_puts_and_gets(fs: FilesystemStore) -> None:
    """With max_bandwidth 1000 B/s, moving 3000 bytes takes 3 s of (injected) time."""
    clock = FakeClock()
    store = ThrottledStore(fs, TokenBucket(1000.0, clock=clock, sleep=clock.sleep))
    store.put("a", b"x" * 1000)
    store.put("b", b"x" * 1000)
    assert store.get("a") == b"x" * 1000
    assert clock.slept == [1.0, 1.0]
    store.put("c", b"x" * 500)
    assert clock.now == pytest.approx(3.0)
    assert clock.slept[-1] == pytest.approx(1.0)


def test_a_stop_ends_the_bandwidth_wait_of_a_put(fs: FilesystemStore) -> None:
    """A put that would wait for bandwidth (an earlier put's hour at 1 B/s) raises
    InterruptedOperation when the bucket's cancel event is set, and stores nothing."""
    clock = FakeClock()
    cancel = threading.Event()
    store = ThrottledStore(fs, TokenBucket(1.0, clock=clock, sleep=clock.sleep, cancel=cancel))
    store.put("a", b"x" * 3600)
    cancel.set()
    with pytest.raises(InterruptedOperation):
        store.put("b", b"x")
    assert not fs.exists("b")
    assert clock.slept == []


def test_bandwidth_cap_does_not_charge_metadata_calls(fs: FilesystemStore) -> None:
    """stat, exists, list and delete move no payload and are never delayed."""
    clock = FakeClock()
    fs.put("a", b"x" * 10_000)
    store = ThrottledStore(fs, TokenBucket(1.0, clock=clock, sleep=clock.sleep))
    assert store.stat("a").size == 10_000
    assert store.exists("a")
    assert [i.key for i in store.list()] == ["a"]
    store.delete("a")
    assert clock.slept == []


def test_wrappers_are_object_stores_and_unwrap(fs: FilesystemStore) -> None:
    """Wrappers satisfy the ObjectStore protocol and innermost() reaches the real store."""
    wrapped = RetryingStore(ThrottledStore(fs, TokenBucket(None)))
    assert isinstance(wrapped, ObjectStore)
    assert wrapped.name == "t"
    assert innermost(wrapped) is fs
    assert wrapped.capabilities() == Capabilities(conditional_put=True, object_lock=False)
