"""Which live member owns a job: tooz's consistent hash ring over the members that may
run it. The same inputs give the same owner on every member; a member leaving moves
only its own jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tooz.hashring import HashRing

from recoveryd.fleet.port import Member

PARTITIONS = 2**7  # points per member on the ring: a 1,000-job fleet spreads within ~10%


def job_key(job_id: str, source: str | None) -> str:
    """What is hashed: the source for its jobs (one member backs up, verifies and drills a
    source), the job id for the others (prune, replicate, playbook drills)."""
    return f"source:{source}" if source else job_id


class Partition:
    """The owners of jobs among `members`, one ring per set of eligible members."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.members = tuple(sorted(members, key=lambda m: m.name))
        self._rings: dict[tuple[str, ...], HashRing] = {}

    def owner(self, key: str, site: str | None) -> str | None:
        """The member that owns `key` (a `job_key`) of `site`; None when no live member
        serves that site."""
        names = tuple(m.name for m in self.members if m.serves_site(site))
        if not names:
            return None
        ring = self._rings.get(names)
        if ring is None:
            from tooz.hashring import HashRing  # loaded only in fleet mode

            ring = self._rings[names] = HashRing(
                names, partitions=PARTITIONS, hash_function="sha256"
            )
        (node,) = ring.get_nodes(key.encode())
        return str(node)
