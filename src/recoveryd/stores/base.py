"""The ObjectStore interface: what the repository layer needs from any store.

Keys are `/`-separated names relative to the repository root (the target's
prefix is applied by the implementation). Implementations: `filesystem.py`
(local directory), `s3.py` (boto3, any S3-compatible vendor). Cross-cutting
behaviour (retries, bandwidth limits) lives in wrappers that are themselves
ObjectStores (`wrappers.py`).

Contract, checked by tests/contract/test_store_contract.py against every
implementation:
- `put` is atomic: a reader sees the whole old object, the whole new one, or
  none; never a prefix. A failed or interrupted `put` leaves no object and no
  orphaned multipart upload.
- `put` overwrites unless `if_absent=True`; then an existing key raises
  PreconditionFailedError where the store supports conditional writes; stores
  that do not (Swift) report `capabilities.conditional_put = False` and the
  caller must not rely on it.
- `get`/`get_range`/`stat` of a missing key raise NotFoundError.
- `delete` of a missing key is not an error (idempotent); an object under
  retention raises StoreError (not transient).
- `list(prefix)` yields every key under the prefix exactly once, with size,
  in no guaranteed order; it reads after writes (strong consistency).
- Transient failures (timeouts, 5xx, throttling, resets) raise
  TransientStoreError; the retry wrapper retries only those.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime | None = None  # when the store last wrote it, where listings say


@dataclass(frozen=True)
class Retention:
    """Object Lock retention to apply to an object."""

    mode: str  # "compliance" | "governance"
    until: datetime


@dataclass(frozen=True)
class Capabilities:
    conditional_put: bool
    object_lock: bool  # retention is applied *and enforced* (probed, not assumed)


@runtime_checkable
class ObjectStore(Protocol):
    """A flat namespace of objects. Thread-safe: the pipeline calls it concurrently."""

    name: str

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        """Store `data` under `key` atomically (see module contract)."""
        ...

    def get(self, key: str) -> bytes:
        """The whole object. NotFoundError when absent."""
        ...

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer at the end). NotFoundError when absent."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size of the object. NotFoundError when absent."""
        ...

    def exists(self, key: str) -> bool:
        """True when the object exists."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; missing is fine. Locked objects raise StoreError."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`."""
        ...

    def extend_retention(self, key: str, retention: Retention) -> None:
        """Push the object's retention to at least `retention.until` (never shortens)."""
        ...

    def capabilities(self) -> Capabilities:
        """What this store really does (Object Lock is probed: lock, try delete, check)."""
        ...

    def close(self) -> None:
        """Release connections. Further calls are undefined."""
        ...
