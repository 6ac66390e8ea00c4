"""A simulated power loss for the filesystem store — a TEST DOUBLE at the store boundary.

No real power can be cut here, and a loop device with dm-flakey/dm-log-writes is not
available on this machine, so this double models what a power loss does to a POSIX
filesystem: a change to a directory entry (a file created by rename or link, a file
unlinked) survives only once that directory has been fsynced. File contents are
taken as durable, because the store fsyncs every file before renaming it into place.

`PowerLossStore` wraps a real `FilesystemStore` (the real code writes real files).
It watches the store's directory fsyncs (by wrapping `filesystem._fsync_dir`) and
keeps, for every put and delete, the object's previous content until a fsync of its
directory makes the change durable. At the seeded operation number `cut_at` it
"loses power": the operation in flight is either not started or completed (seeded),
`PowerCut` is raised, and every later operation raises it too. `reboot()` then
drops a seeded subset of the changes that were never synced (restoring the previous
content, or removing the new file), which is what the disk may hold after the cut,
and `boot_id` changes as it does when a host restarts.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from recoveryd import atomic
from recoveryd.stores import filesystem
from recoveryd.stores.base import Capabilities, ObjectInfo, Retention
from recoveryd.stores.filesystem import FilesystemStore


class PowerCut(BaseException):
    """The power went out: nothing more reaches the disk."""


@dataclass
class _Change:
    path: Path
    previous: bytes | None


class PowerLossStore:
    """An ObjectStore over a FilesystemStore that can lose power (see module docstring)."""

    def __init__(self, root: Path, name: str, *, cut_at: int | None, seed: int) -> None:
        self.inner = FilesystemStore(root, name)
        self.name = name
        self.cut_at = cut_at
        self.ops = 0
        self.initialised = 0
        self.dead = False
        self.rng = random.Random(seed)
        self.pending: list[_Change] = []
        self.dropped = 0
        self._lock = threading.RLock()

    # -- the fsync hook ----------------------------------------------------------------

    def fsync_dir_hook(self, original: Callable[[Path], None]) -> Callable[[Path], None]:
        """A replacement for `filesystem._fsync_dir` that marks that directory durable."""

        def hooked(directory: Path) -> None:
            original(directory)
            with self._lock:
                self.pending = [c for c in self.pending if c.path.parent != Path(directory)]

        return hooked

    # -- power -------------------------------------------------------------------------

    def _tick(self) -> bool:
        """Count one mutating operation; True when it must still be carried out then cut."""
        with self._lock:
            if self.dead:
                raise PowerCut
            n = self.ops
            self.ops += 1
            if self.cut_at is None or n < self.cut_at:
                return False
            self.dead = True
            if self.rng.random() < 0.5:
                raise PowerCut
            return True

    def reboot(self) -> int:
        """Drop a seeded subset of the unsynced changes; the number dropped."""
        for change in reversed(self.pending):
            if self.rng.random() < 0.5:
                continue
            self.dropped += 1
            if change.previous is None:
                change.path.unlink(missing_ok=True)
            else:
                change.path.write_bytes(change.previous)
        self.pending = []
        return self.dropped

    def _path(self, key: str) -> Path:
        return self.inner.root.joinpath(*key.split("/"))

    def _mutate(self, key: str, action: Callable[[], None]) -> None:
        cut_after = self._tick()
        path = self._path(key)
        previous = path.read_bytes() if path.is_file() else None
        with self._lock:
            change = _Change(path, previous)
            self.pending.append(change)
        action()
        if cut_after:
            raise PowerCut

    # -- the ObjectStore interface --------------------------------------------------------

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        self._mutate(
            key, lambda: self.inner.put(key, data, if_absent=if_absent, retention=retention)
        )

    def delete(self, key: str) -> None:
        self._mutate(key, lambda: self.inner.delete(key))

    def _read(self) -> None:
        if self.dead:
            raise PowerCut

    def get(self, key: str) -> bytes:
        self._read()
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self._read()
        return self.inner.get_range(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        self._read()
        return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        self._read()
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._read()
        return self.inner.list(prefix)

    def extend_retention(self, key: str, retention: Retention) -> None:
        self._read()
        self.inner.extend_retention(key, retention)

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    def close(self) -> None:
        self.inner.close()


def install(store: PowerLossStore, monkeypatch: object) -> None:
    """Route the filesystem store's directory fsyncs through `store`'s hook."""
    hook = store.fsync_dir_hook(filesystem.fsync_dir)
    # the store calls it directly (deletes) and through the atomic writer (puts)
    monkeypatch.setattr(filesystem, "fsync_dir", hook)  # type: ignore[attr-defined]
    monkeypatch.setattr(atomic, "fsync_dir", hook)  # type: ignore[attr-defined]
