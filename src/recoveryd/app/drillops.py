"""The snapshot operations drill steps use (`drills.ports.SnapshotOperations`), backed by
this package. The CLI, the daemon and the surge tools pass an instance to the drill runner."""

from __future__ import annotations

from recoveryd.app.backup import backup
from recoveryd.app.snapshots import list_snapshots, restore
from recoveryd.app.verification import verify
from recoveryd.drills.ports import SnapshotOperations


class AppSnapshotOperations:
    """`SnapshotOperations` through `recoveryd.app`: each call opens what it needs and
    closes it again, so one instance serves every run. The port's contract is in
    `drills/ports.py`; mypy checks these functions against it (`_CHECKED` below)."""

    backup = staticmethod(backup)
    list_snapshots = staticmethod(list_snapshots)
    restore = staticmethod(restore)
    verify = staticmethod(verify)


_CHECKED: SnapshotOperations = AppSnapshotOperations()
