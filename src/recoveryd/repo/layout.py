"""Object names inside a repository (docs/FORMAT.md §3)."""

from __future__ import annotations

CONFIG_KEY = "config"
KEYS_PREFIX = "keys/"
DATA_PREFIX = "data/"
SNAPSHOTS_PREFIX = "snapshots/"
LOCKS_PREFIX = "locks/"
WAL_PREFIX = "wal/"
BINLOG_PREFIX = "binlog/"
PACKS_PREFIX = "packs/"
INDEX_PREFIX = "index/"


def chunk_key(chunk_id: str) -> str:
    """Object key of a chunk: `data/<first two hex digits>/<id>`."""
    return f"{DATA_PREFIX}{chunk_id[:2]}/{chunk_id}"


def manifest_key(snapshot_id: str) -> str:
    """Object key of a snapshot's manifest: `snapshots/<id>`."""
    return f"{SNAPSHOTS_PREFIX}{snapshot_id}"


def pack_key(pack_id: str) -> str:
    """Object key of a pack: `packs/<first two hex digits>/<pack id>`."""
    return f"{PACKS_PREFIX}{pack_id[:2]}/{pack_id}"


def index_key(index_id: str) -> str:
    """Object key of an index object: `index/<index id>`."""
    return f"{INDEX_PREFIX}{index_id}"
