"""The repository format (docs/FORMAT.md): the public API of snapshots.

Used by `recoveryd.app`; everything else in this package is internal.

- Keys: `generate_master_key(path)`, `load_master_key(path)` -> `MasterKey`.
- `Repository.init/open/open_or_init(store, master, *, cipher=, name=, retention_days=,
  lock_mode=, concurrency=, clock=)` (`init(pack_size=)`: 16 MiB packs by default, None
  for a version 1 repository); `.enable_packs(pack_size)` upgrades a version 1 one;
  `.snapshots(source)`, `.manifest(id)`,
  `.resolve(prefix)`, `.restore_stream(id)`, `.verify(ids, read_data)`,
  `.copy_snapshot(id, dest)`, `.forget(policies, dry_run=)`, `.prune(dry_run=)`,
  `.rotate_data_key()`, `.rewrap(new_master)`, `.lock(exclusive=, operation=)`.
- `write_snapshot(reader, repos, SnapshotMeta(source=...), gate=, progress=, compression=)`
  (`compression`: "zstd", the default, or "lz4");
  `write_snapshot_to(..., min_targets=)` -> `SnapshotWrite` (drops failing targets).
- `Policy` (retention rules) and `apply_retention`; `PruneReport`.
"""

from __future__ import annotations

from recoveryd.repo.backup import (
    SnapshotMeta,
    SnapshotWrite,
    new_snapshot_id,
    write_snapshot,
    write_snapshot_to,
)
from recoveryd.repo.chunker import ChunkerParams
from recoveryd.repo.keys import (
    MasterKey,
    format_master_key,
    generate_master_key,
    load_master_key,
    parse_master_key,
)
from recoveryd.repo.manifest import ChunkRef, Manifest
from recoveryd.repo.prune import PruneReport
from recoveryd.repo.repoconfig import RepoConfig
from recoveryd.repo.repository import Repository
from recoveryd.repo.restore import RestoreReader
from recoveryd.repo.retention import Decision, Policy
from recoveryd.repo.retention import apply as apply_retention

__all__ = [
    "ChunkRef",
    "ChunkerParams",
    "Decision",
    "Manifest",
    "MasterKey",
    "Policy",
    "PruneReport",
    "RepoConfig",
    "Repository",
    "RestoreReader",
    "SnapshotMeta",
    "SnapshotWrite",
    "apply_retention",
    "format_master_key",
    "generate_master_key",
    "load_master_key",
    "new_snapshot_id",
    "parse_master_key",
    "write_snapshot",
    "write_snapshot_to",
]
