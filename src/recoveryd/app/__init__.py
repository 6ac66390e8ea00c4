"""The operations of recoveryd, composed from configuration: what the CLI, the daemon
and drills all call.

- `backup(cfg, sources=None, *, admission=, progress=, cancel=) -> list[BackupResult]`
- `write_source(cfg, source, gate, *, progress=, cancel=) -> SourceSnapshot`: the work of
  one source's backup without admission or run record (the daemon's jobs do both)
- `list_snapshots(cfg, *, source=, target=) -> list[SnapshotInfo]` (merged across targets)
- `restore(cfg, snapshot_id, dest, *, target=, progress=, admit=) -> SnapshotInfo`
- `verify(cfg, snapshot_ids=(), *, read_data=False|True|"sample", target=, strict=True)
  -> VerifyReport` (strict: IntegrityError, exit 3, naming snapshot and object)
- `prune(cfg, *, dry_run=False) -> PruneReport`
- `copy(cfg, from_target, to_target, snapshot_ids=()) -> list[str]`
- `replicate(cfg) -> ReplicationReport`: copy snapshots to the targets of their source
  that lack them (catch-up after a degraded backup)
- `init_repositories(cfg, targets=()) -> list[InitResult]` (the only creator of
  repositories), `target_state(cfg, target) -> TargetState`
- `open_repository(cfg, target_name) -> repo.Repository` (RepositoryMissingError, exit 2,
  when the target holds none)
- `generate_key(cfg, *, force=False) -> Path`, `rotate_key(cfg) -> KeyRotation`
- `check_config(cfg) -> ConfigSummary`
- `check_shedding(cfg, [(priority, job)])`, `check_backup(cfg, sources)`,
  `check_restore(cfg, source)`: RefusedError (exit 5) while the recorded
  load-shedding level holds that work back (the CLI's `--force` skips them)

Only this package (with `cli/` and `daemon.py`) wires stores, sources and the
repository format together.
"""

from __future__ import annotations

from recoveryd.app.backup import (
    PartialBackupError,
    SourceSnapshot,
    backup,
    due_soon,
    slot_taken,
    write_source,
)
from recoveryd.app.configcheck import ConfigSummary, check_config
from recoveryd.app.keys import KeyRotation, generate_key, rotate_key
from recoveryd.app.prune import PruneReport, policy_of, prune
from recoveryd.app.replicate import ReplicationReport, replicate
from recoveryd.app.repos import InitResult, TargetState, init_repositories, target_state
from recoveryd.app.shedding import check_backup, check_restore, check_shedding
from recoveryd.app.snapshots import copy, list_snapshots, restore
from recoveryd.app.verification import verify
from recoveryd.app.wiring import open_repository, open_store, state

__all__ = [
    "ConfigSummary",
    "InitResult",
    "KeyRotation",
    "PartialBackupError",
    "PruneReport",
    "ReplicationReport",
    "SourceSnapshot",
    "TargetState",
    "backup",
    "check_backup",
    "check_config",
    "check_restore",
    "check_shedding",
    "copy",
    "due_soon",
    "generate_key",
    "init_repositories",
    "list_snapshots",
    "open_repository",
    "open_store",
    "policy_of",
    "prune",
    "replicate",
    "restore",
    "rotate_key",
    "slot_taken",
    "state",
    "target_state",
    "verify",
    "write_source",
]
