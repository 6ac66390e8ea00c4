"""Repository locks as objects, for stores without conditional writes (restic's protocol).

A lock is a LOCK envelope at `locks/<16 hex>` holding JSON
`{"time", "host", "boot", "pid", "exclusive", "operation"}` (`boot`: the host's boot
id, absent in locks of older versions). Protocol:

1. write our own lock object;
2. list `locks/` and read every other lock;
3. if a *fresh* conflicting lock exists (either side exclusive), delete ours
   and back off; after the retries, raise RefusedError (exit 5) naming the holder.

Both contenders may back off at once; neither ever proceeds on a conflict, which
is what matters. A lock is refreshed (its `time` rewritten) every
`REFRESH_INTERVAL`; it is stale when its time is older than `STALE_AFTER`, or
when it was written on this host by a process that no longer runs, or before this
host last booted (after a power loss its pid may belong to another process). Stale locks
are ignored, and deleted by an exclusive locker (prune). backup, restore, verify
and copy take shared locks; forget and prune take an exclusive one, so prune
never deletes a chunk a running backup relies on. A crashed backup's chunks are
only collected once its lock is stale: the stale timeout is the grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from recoveryd.errors import (
    InterruptedOperation,
    NotFoundError,
    RecoverydError,
    RefusedError,
    StoreError,
)
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.manifest import format_time, parse_time

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository

REFRESH_INTERVAL = timedelta(minutes=5)
STALE_AFTER = timedelta(minutes=30)
LOCK_PREFIX = "locks/"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This host's boot id (new at every start of the kernel); "" where there is none."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class LockInfo:
    key: str
    time: datetime
    host: str
    pid: int
    exclusive: bool
    operation: str
    boot: str = ""

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {
            "time": format_time(self.time),
            "host": self.host,
            "pid": self.pid,
            "exclusive": self.exclusive,
            "operation": self.operation,
        }
        if self.boot:
            doc["boot"] = self.boot
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, key: str, data: bytes) -> LockInfo:
        doc = json.loads(data)
        return cls(
            key=key,
            time=parse_time(doc["time"]),
            host=str(doc["host"]),
            pid=int(doc["pid"]),
            exclusive=bool(doc["exclusive"]),
            operation=str(doc.get("operation", "")),
            boot=str(doc.get("boot", "")),
        )

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return (
            f"{kind} lock of {self.operation or 'an operation'} on host {self.host} "
            f"(pid {self.pid}) since {format_time(self.time)[:19]}Z"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(lock: LockInfo, now: datetime, host: str) -> bool:
    """True when the lock's holder is gone: not refreshed for STALE_AFTER, or a local lock
    of a process that no longer runs or that ran before this host last booted."""
    if now - lock.time > STALE_AFTER:
        return True
    if lock.pid <= 0 or lock.host != host:
        return False
    if lock.boot and lock.boot != boot_id():
        return True
    return lock.pid != os.getpid() and not _pid_alive(lock.pid)


class Lock:
    """A held lock; refreshed in the background until `release()` (idempotent)."""

    def __init__(self, repo: Repository, info: LockInfo) -> None:
        self._repo = repo
        self.info = info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, daemon=True, name="lock-refresh")
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH_INTERVAL.total_seconds()):
            self.refresh()

    def refresh(self) -> None:
        """Rewrite the lock with the current time (transient failures retried next round;
        a stop of the run, cutting the store's wait short, is the run's to report)."""
        info = replace(self.info, time=self._repo.clock())
        with contextlib.suppress(StoreError, InterruptedOperation):
            self._repo.put_object(info.key, ObjectType.LOCK, info.to_bytes())
            self.info = info

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        # A store that fails after the run's stop cuts its retry short: the lock then goes
        # stale like one whose delete failed, and the caller's other cleanup still runs.
        with contextlib.suppress(StoreError, InterruptedOperation):
            self._repo.store.delete(self.info.key)

    def abandon(self) -> None:
        """Stop refreshing without deleting: for a store that stopped answering, where a
        delete would only wait for its timeouts. The lock goes stale after `STALE_AFTER`,
        and the next exclusive locker (prune) removes it."""
        self._stop.set()

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_locks(repo: Repository, now: datetime) -> list[LockInfo]:
    """Every lock in the repository; vanished ones are skipped.

    A lock that cannot be read (altered, or sealed with a key newer than this
    process knows) counts as a fresh exclusive lock of an unknown holder: when
    in doubt, do not let prune run."""
    out = []
    for obj in repo.store.list(LOCK_PREFIX):
        try:
            out.append(LockInfo.from_bytes(obj.key, repo.get_object(obj.key, ObjectType.LOCK)))
        except NotFoundError:
            continue
        except (RecoverydError, ValueError, KeyError, TypeError):
            out.append(LockInfo(obj.key, now, "(unreadable lock)", 0, True, "unknown"))
    return out


def acquire(
    repo: Repository,
    *,
    exclusive: bool,
    operation: str,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> Lock:
    """Take a lock on `repo` or raise RefusedError naming the holder of a conflicting one."""
    host = socket.gethostname()
    conflict: LockInfo | None = None
    for attempt in range(retries + 1):
        info = LockInfo(
            f"{LOCK_PREFIX}{os.urandom(8).hex()}",
            repo.clock(),
            host,
            os.getpid(),
            exclusive,
            operation,
            boot_id(),
        )
        repo.put_object(info.key, ObjectType.LOCK, info.to_bytes())
        conflict = _find_conflict(repo, info, host)
        if conflict is None:
            return Lock(repo, info)
        with contextlib.suppress(StoreError):
            repo.store.delete(info.key)
        if attempt < retries:
            sleep(0.05 * (2**attempt) + random.uniform(0, 0.05))  # noqa: S311 - jitter only
    holder = conflict.describe() if conflict else "concurrent process"
    where = conflict.key if conflict else LOCK_PREFIX
    raise RefusedError(
        f"target {repo.name or '(unnamed)'}: repository is locked by a {holder}; "
        f"wait for it to finish, or delete {where} if that process is gone"
    )


def _find_conflict(repo: Repository, mine: LockInfo, host: str) -> LockInfo | None:
    now = repo.clock()
    for other in read_locks(repo, now):
        if other.key == mine.key:
            continue
        if is_stale(other, now, host):
            if mine.exclusive:
                with contextlib.suppress(StoreError):
                    repo.store.delete(other.key)
            continue
        if mine.exclusive or other.exclusive:
            return other
    return None
