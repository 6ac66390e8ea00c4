"""A stop that arrives once a backup has passed its last checkpoint does not split the
commit: every target gets its manifest, the run returns what it committed, and every lock
it holds is released or left to go stale, never kept by an error escaping the cleanup.

The stores are real in-memory stores behind the product's RetryingStore, whose backoff
waits on the run's stop; the fault (one transient error, raised by the store at the
moment the stop is requested) is injected by the test."""

from __future__ import annotations

import threading
from collections.abc import Callable

from recoveryd.errors import TransientStoreError
from recoveryd.flow import OpenGate, StopSignal
from recoveryd.repo import Repository, SnapshotMeta, write_snapshot_to
from recoveryd.repo.layout import SNAPSHOTS_PREFIX
from recoveryd.repo.locks import LOCK_PREFIX
from recoveryd.stores.base import Retention
from recoveryd.stores.memory import MemoryStore
from recoveryd.stores.wrappers import RetryingStore
from tests.unit.repo.helpers import BytesReader, master, new_repo, text_data

Trigger = Callable[[str, str], bool]
"""(operation, key) → whether this call requests the stop and fails once."""


class StopsOnce(MemoryStore):
    """A memory store that, on the first call matching `trigger`, sets `stop` (an operator's
    stop arriving at that moment) and fails that call with a transient error."""

    def __init__(self, stop: threading.Event, trigger: Trigger) -> None:
        super().__init__()
        self.stop = stop
        self.trigger: Trigger | None = None
        self._armed = trigger

    def arm(self) -> None:
        self.trigger = self._armed

    def _maybe(self, op: str, key: str) -> None:
        if self.trigger is not None and self.trigger(op, key):
            self.trigger = None
            self.stop.set()
            raise TransientStoreError(f"{op} {key}: connection reset")

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        self._maybe("put", key)
        super().put(key, data, if_absent=if_absent, retention=retention)

    def delete(self, key: str) -> None:
        self._maybe("delete", key)
        super().delete(key)


def _targets(
    stop: threading.Event, triggers: list[Trigger | None]
) -> tuple[list[StopsOnce], list[Repository]]:
    """One repository per trigger, each on its own StopsOnce store (armed after init) behind
    a RetryingStore waiting on `stop`, with no real backoff."""
    stores, repos = [], []
    for i, trigger in enumerate(triggers):
        inner = StopsOnce(stop, trigger or (lambda op, key: False))
        new_repo(inner, key=master())
        retrying = RetryingStore(inner, sleep=lambda s: None, rand=lambda: 0.0, cancel=stop)
        repos.append(Repository.open(retrying, master(), name=f"t{i}"))
        inner.arm()
        stores.append(inner)
    return stores, repos


def _manifests(store: MemoryStore) -> list[str]:
    return [o.key for o in store.list(SNAPSHOTS_PREFIX)]


def _locks(store: MemoryStore) -> list[str]:
    return [o.key for o in store.list(LOCK_PREFIX)]


def _write(repos: list[Repository], stop: StopSignal) -> list[str]:
    written = write_snapshot_to(
        BytesReader(text_data(2000)),
        repos,
        SnapshotMeta(source="src"),
        gate=OpenGate(stop),
        commit_shield=stop.shielded,
    )
    return [i.targets[0] for i in written.infos]


def test_a_stop_during_the_manifests_commits_every_target() -> None:
    """The stop arrives while the second target's manifest is written, and that put fails
    once: the manifests are written past the stop (the retry waits as it would without a
    stop), so the snapshot is committed on both targets and the run says so, instead of
    being committed on the first and reported as interrupted."""
    stop = StopSignal(threading.Event())
    stores, repos = _targets(
        stop, [None, lambda op, key: op == "put" and key.startswith(SNAPSHOTS_PREFIX)]
    )
    assert _write(repos, stop) == ["t0", "t1"]
    assert [len(_manifests(s)) for s in stores] == [1, 1]
    assert stop.is_set()


def test_a_lock_that_cannot_be_deleted_after_a_stop_does_not_keep_the_others() -> None:
    """The stop arrives as the first target's lock is deleted, and that delete fails once:
    the lock is left to go stale, the second target's lock is still released, and the run
    returns the snapshot it committed on both targets."""
    stop = StopSignal(threading.Event())
    stores, repos = _targets(
        stop, [lambda op, key: op == "delete" and key.startswith(LOCK_PREFIX), None]
    )
    assert _write(repos, stop) == ["t0", "t1"]
    assert [len(_manifests(s)) for s in stores] == [1, 1]
    assert len(_locks(stores[0])) == 1
    assert _locks(stores[1]) == []
