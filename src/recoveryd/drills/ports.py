"""What drills need from the layers above them, as interfaces the callers implement.

The drill runner sits below the composition layer (`recoveryd.app`): it never
imports it. The CLI, the daemon and the surge tools pass in

- `SnapshotOperations`: the product's own backup, list, restore and verify,
  used by the `backup`, `restore` and `verify` step kinds (implemented by
  `recoveryd.app.drillops.AppSnapshotOperations`);
- a `LevelSource`: the load level `pressure` probes compare against; the
  governor passes its own `level`, so a playbook it runs never reads the level
  back through a file;
- a `ReportWriter` (`drills/result.py`) for the run's report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from recoveryd.config import LoadedConfig
from recoveryd.model import BackupResult, SnapshotInfo, VerifyReport

LevelSource = Callable[[], str]
"""The current load level: "normal", "elevated" or "critical"."""


class SnapshotOperations(Protocol):
    """The product's snapshot operations as drill steps use them.

    Every method raises a `RecoverydError` (with its exit code) on failure; the
    step journals its message as the step's error.
    """

    def backup(
        self, cfg: LoadedConfig, sources: Sequence[str] | None, *, cancel: threading.Event
    ) -> list[BackupResult]:
        """Snapshot `sources` (every configured source when None) now, one result each."""
        ...

    def list_snapshots(
        self, cfg: LoadedConfig, *, source: str | None, target: str | None
    ) -> list[SnapshotInfo]:
        """Snapshots of `source` (any when None) in `target` (every target when None)."""
        ...

    def restore(
        self,
        cfg: LoadedConfig,
        snapshot_id: str,
        dest: str,
        *,
        target: str | None,
        password: str | None,
    ) -> SnapshotInfo:
        """Restore `snapshot_id` (id or unique prefix) into `dest`, authenticating with
        `password` when given; IntegrityError (exit 3) when the snapshot is damaged."""
        ...

    def verify(
        self,
        cfg: LoadedConfig,
        snapshot_ids: Sequence[str],
        *,
        read_data: bool,
        target: str | None,
    ) -> VerifyReport:
        """Check `snapshot_ids` (every snapshot when empty); IntegrityError on a problem."""
        ...
