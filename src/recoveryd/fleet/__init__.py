"""Fleet mode's coordination: who is in the group, who owns which job, locks per slot.

The daemon is written against the small port in `port.py` (`Coordination`,
`Member`, `SlotLock`) and the pure ownership rule in `partition.py`; the one
implementation, over OpenStack tooz and etcd, is `tooz_etcd.py`, the only
module that imports tooz. `open_coordination` builds it, so a configuration
without `fleet` never loads tooz.
"""

from __future__ import annotations

from collections.abc import Sequence

from recoveryd.fleet.partition import Partition, job_key
from recoveryd.fleet.port import (
    Coordination,
    CoordinationError,
    Member,
    SlotLock,
    SlotRecord,
)

__all__ = [
    "Coordination",
    "CoordinationError",
    "Member",
    "Partition",
    "SlotLock",
    "SlotRecord",
    "job_key",
    "open_coordination",
]


def open_coordination(
    urls: Sequence[str],
    *,
    group: str,
    member: str,
    lease: float,
    serves: Sequence[str],
    observer: bool = False,
) -> Coordination:
    """The tooz/etcd coordination of this member (not connected yet: call `join`). An
    `observer` reads the group without ever joining it (`recoveryd fleet status`)."""
    from recoveryd.fleet.tooz_etcd import ToozCoordination

    return ToozCoordination(
        urls, group=group, member=member, lease=lease, serves=serves, observer=observer
    )
