"""The snapshot operations drill steps use (`drills.ports.SnapshotOperations`), backed by
this package. The CLI, the daemon and the surge tools pass an instance to the drill runner."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from recoveryd.app.backup import backup
from recoveryd.app.snapshots import list_snapshots, restore
from recoveryd.app.verification import verify
from recoveryd.config import LoadedConfig
from recoveryd.model import BackupResult, SnapshotInfo, VerifyReport


class AppSnapshotOperations:
    """`SnapshotOperations` through `recoveryd.app`: each call opens what it needs and
    closes it again, so one instance serves every run."""

    def backup(
        self, cfg: LoadedConfig, sources: Sequence[str] | None, *, cancel: threading.Event
    ) -> list[BackupResult]:
        return backup(cfg, sources, cancel=cancel)

    def list_snapshots(
        self, cfg: LoadedConfig, *, source: str | None, target: str | None
    ) -> list[SnapshotInfo]:
        return list_snapshots(cfg, source=source, target=target)

    def restore(
        self,
        cfg: LoadedConfig,
        snapshot_id: str,
        dest: str,
        *,
        target: str | None,
        password: str | None,
    ) -> SnapshotInfo:
        return restore(cfg, snapshot_id, dest, target=target, password=password)

    def verify(
        self,
        cfg: LoadedConfig,
        snapshot_ids: Sequence[str],
        *,
        read_data: bool,
        target: str | None,
    ) -> VerifyReport:
        return verify(cfg, snapshot_ids, read_data=read_data, target=target)
