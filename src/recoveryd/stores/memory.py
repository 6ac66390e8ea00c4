"""An in-memory ObjectStore: for unit tests and dry runs.

Honours the whole contract of `stores/base.py`, including conditional writes
and Object Lock retention (enforced against an injectable clock), so tests of
the repository layer exercise the same paths as with a real store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from recoveryd.errors import NotFoundError, PreconditionFailedError, StoreError
from recoveryd.stores.base import Capabilities, ObjectInfo, Retention


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryStore:
    """A dict of objects behind a lock. `objects` is exposed for tests that tamper."""

    def __init__(
        self,
        name: str = "memory",
        *,
        conditional_put: bool = True,
        object_lock: bool = False,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.name = name
        self.objects: dict[str, bytes] = {}
        self.retention: dict[str, Retention] = {}
        self._caps = Capabilities(conditional_put=conditional_put, object_lock=object_lock)
        self._clock = clock
        self._lock = threading.Lock()
        self.puts = 0

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        with self._lock:
            if if_absent and self._caps.conditional_put and key in self.objects:
                raise PreconditionFailedError(f"store {self.name}: object {key} already exists")
            self._check_unlocked(key, "overwrite")
            self.objects[key] = bytes(data)
            self.puts += 1
            if retention is not None and self._caps.object_lock:
                self.retention[key] = retention

    def _check_unlocked(self, key: str, verb: str) -> None:
        held = self.retention.get(key)
        if held is not None and held.until > self._clock():
            raise StoreError(
                f"store {self.name}: cannot {verb} {key}: it is under "
                f"{held.mode} retention until {held.until:%Y-%m-%d}"
            )

    def get(self, key: str) -> bytes:
        with self._lock:
            try:
                return self.objects[key]
            except KeyError:
                raise NotFoundError(f"store {self.name}: object {key} not found") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self.get(key)[offset : offset + length]

    def stat(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.get(key)))

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.objects

    def delete(self, key: str) -> None:
        with self._lock:
            if key not in self.objects:
                return
            self._check_unlocked(key, "delete")
            del self.objects[key]
            self.retention.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = [ObjectInfo(k, len(v)) for k, v in self.objects.items() if k.startswith(prefix)]
        return iter(items)

    def extend_retention(self, key: str, retention: Retention) -> None:
        with self._lock:
            if key not in self.objects:
                raise NotFoundError(f"store {self.name}: object {key} not found")
            if not self._caps.object_lock:
                return
            held = self.retention.get(key)
            if held is None or held.until < retention.until:
                self.retention[key] = retention

    def capabilities(self) -> Capabilities:
        return self._caps

    def close(self) -> None:
        return None

    def dump(self, root: Path) -> None:
        """Write every object as the file `<root>/<key>` (the filesystem store's layout)."""
        with self._lock:
            items = list(self.objects.items())
        for key, data in items:
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
