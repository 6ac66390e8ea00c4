"""What prune must not do on its own: erase a source, or most of it at once.

The newest snapshot of each source is always kept (`repo.retention.select_forget`);
so is the newest one that verified on that target. A prune that would forget more
than half of a source's snapshots on a target is refused (ForceRequiredError,
exit 5) unless the operator confirms with `--force`; the daemon never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from recoveryd.errors import ForceRequiredError
from recoveryd.model import SnapshotInfo, VerifiedState

if TYPE_CHECKING:
    from recoveryd.repo.retention import Policy


def newest_verified(
    infos: Sequence[SnapshotInfo], target: str, states: Mapping[tuple[str, str], VerifiedState]
) -> set[str]:
    """Per source, the id of the newest snapshot whose copy on `target` verified ok."""
    best: dict[str, SnapshotInfo] = {}
    for info in infos:
        if states.get((info.id, target)) != "ok":
            continue
        seen = best.get(info.source)
        if seen is None or (info.time, info.id) > (seen.time, seen.id):
            best[info.source] = info
    return {i.id for i in best.values()}


def check_fraction(
    target: str,
    infos: Sequence[SnapshotInfo],
    policies: Mapping[str, Policy],
    protect: set[str],
) -> None:
    """ForceRequiredError when the policies would forget more than half of a source's
    snapshots on `target`."""
    from recoveryd.repo.retention import select_forget

    entries = [(i.id, i.source, i.time) for i in infos]
    for source, drop in sorted(select_forget(entries, policies, protect).items()):
        total = sum(1 for i in infos if i.source == source)
        if len(drop) * 2 > total:
            raise ForceRequiredError(
                f"prune: target {target}: the retention of {source} would forget {len(drop)} "
                f"of its {total} snapshots (more than half); check sources.{source}.retention, "
                "then run `recoveryd prune --force` to confirm (see `prune --dry-run`)"
            )
