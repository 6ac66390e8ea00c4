"""Object names inside a repository (docs/FORMAT.md §3)."""

from __future__ import annotations

CONFIG_KEY = "config"
KEYS_PREFIX = "keys/"
DATA_PREFIX = "data/"
SNAPSHOTS_PREFIX = "snapshots/"
LOCKS_PREFIX = "locks/"
WAL_PREFIX = "wal/"
BINLOG_PREFIX = "binlog/"


def chunk_key(chunk_id: str) -> str:
    """Object key of a chunk: `data/<first two hex digits>/<id>`."""
    return f"{DATA_PREFIX}{chunk_id[:2]}/{chunk_id}"


def manifest_key(snapshot_id: str) -> str:
    """Object key of a snapshot's manifest: `snapshots/<id>`."""
    return f"{SNAPSHOTS_PREFIX}{snapshot_id}"
