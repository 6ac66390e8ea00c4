"""Repository locks keep prune away from running backups, without conditional writes."""

from __future__ import annotations

import threading

import pytest

from recoveryd.errors import InterruptedOperation, RefusedError
from recoveryd.repo import SnapshotMeta, write_snapshot
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.locks import LockInfo
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import BytesReader, Clock, new_repo, text_data


def _store() -> MemoryStore:
    return MemoryStore(conditional_put=False)  # like Swift


def test_shared_locks_coexist_and_exclusive_is_refused_naming_holder() -> None:
    """Two shared locks coexist; an exclusive lock is refused (exit 5) naming the holder."""
    repo = new_repo(_store())
    with repo.lock(operation="backup"), repo.lock(operation="restore"):
        with pytest.raises(RefusedError, match="shared lock of backup on host") as err:
            repo.lock(exclusive=True, operation="prune")
        assert err.value.exit_code == 5
    with repo.lock(exclusive=True, operation="prune"), pytest.raises(RefusedError, match="prune"):
        repo.lock(operation="backup")
    assert list(repo.store.list("locks/")) == []


def test_prune_refuses_while_a_backup_runs() -> None:
    """prune during a backup is refused; the backup's chunks survive and it commits."""
    store = _store()
    repo = new_repo(store)
    started, release = threading.Event(), threading.Event()

    class SlowReader(BytesReader):
        def read(self, size: int = -1, /) -> bytes:
            started.set()
            release.wait(10)
            return super().read(size)

    result: list[str] = []
    t = threading.Thread(
        target=lambda: result.append(
            write_snapshot(SlowReader(text_data(3000)), [repo], SnapshotMeta(source="s"))[0].id
        )
    )
    t.start()
    assert started.wait(10)
    with pytest.raises(RefusedError):
        repo.prune()
    release.set()
    t.join(10)
    assert result and repo.verify(read_data=True).ok


def _plant_lock(repo_store: MemoryStore, repo: object, info: LockInfo) -> None:
    repo.put_object(info.key, ObjectType.LOCK, info.to_bytes())  # type: ignore[attr-defined]


def test_stale_locks_are_ignored_and_removed_by_prune() -> None:
    """A lock not refreshed for 30 minutes no longer blocks; the exclusive locker removes it."""
    clock = Clock()
    store = _store()
    repo = new_repo(store, clock=clock)
    old = LockInfo("locks/00000000000000aa", clock.now, "elsewhere", 4242, True, "prune")
    _plant_lock(store, repo, old)
    with pytest.raises(RefusedError, match="elsewhere"):
        repo.lock(operation="backup")
    clock.advance(minutes=31)
    repo.prune()
    assert not store.exists(old.key)


def test_lock_of_a_dead_local_process_is_stale() -> None:
    """A lock written on this host by a process that no longer exists does not block."""
    import socket

    clock = Clock()
    store = _store()
    repo = new_repo(store, clock=clock)
    dead = LockInfo("locks/00000000000000bb", clock.now, socket.gethostname(), 2**22 + 7, True, "x")
    _plant_lock(store, repo, dead)
    with repo.lock(operation="backup"):
        pass


def test_unreadable_lock_blocks_prune() -> None:
    """A lock object that does not authenticate counts as held: prune does not guess."""
    store = _store()
    repo = new_repo(store)
    store.put("locks/00000000000000cc", b"garbage" * 10)
    with pytest.raises(RefusedError, match="unreadable"):
        repo.prune()


def test_lock_content_is_encrypted() -> None:
    """Lock objects reveal nothing in clear (host names are metadata too)."""
    store = _store()
    repo = new_repo(store)
    with repo.lock(operation="backup") as lock:
        raw = store.objects[lock.info.key]
        assert b"backup" not in raw
        assert b"pid" not in raw


def test_refreshed_lock_stays_fresh() -> None:
    """A long operation refreshes its lock, so it never turns stale while it runs."""
    clock = Clock()
    repo = new_repo(_store(), clock=clock)
    with repo.lock(operation="backup") as held:
        clock.advance(minutes=25)
        held.refresh()
        clock.advance(minutes=25)  # 50 minutes after it was taken, 25 after the refresh
        with pytest.raises(RefusedError, match="backup"):
            repo.lock(exclusive=True, operation="prune")


def test_a_refresh_cut_short_by_a_stop_leaves_the_lock_as_it_was() -> None:
    """A refresh whose write the run's stop interrupts (a store waiting for bandwidth)
    raises nothing in the refresh thread: the run reports its stop itself; the lock keeps
    its last refreshed time."""
    clock = Clock()
    store = _store()
    repo = new_repo(store, clock=clock)
    with repo.lock(operation="backup") as held:
        taken = held.info.time

        def stopped(*_args: object, **_kw: object) -> None:
            raise InterruptedOperation("interrupted; the snapshot was not committed")

        store.put = stopped  # type: ignore[method-assign]
        clock.advance(minutes=5)
        held.refresh()
        assert held.info.time == taken
