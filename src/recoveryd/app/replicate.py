"""Catch-up of replicas: copy each snapshot to the targets of its source that lack it.

A degraded backup (a target unreachable during the run) commits the snapshot
to the targets that answered. When the missing target answers again, the
snapshot is copied there from a target that holds it, with the same copy
machinery as `recoveryd copy` (chunks re-encrypted under the destination's
keys, deduplicated there, the manifest written last): no new dump is needed.
The store listings decide what is missing, not the local state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recoveryd.app import wiring
from recoveryd.app.snapshots import copy
from recoveryd.config import LoadedConfig
from recoveryd.errors import StoreError


@dataclass(frozen=True)
class Replica:
    """One snapshot copied from `source_target` to `target`."""

    snapshot: str
    source: str
    source_target: str
    target: str

    def to_json(self) -> dict[str, str]:
        return {
            "snapshot": self.snapshot,
            "source": self.source,
            "from": self.source_target,
            "to": self.target,
        }


@dataclass(frozen=True)
class ReplicationReport:
    """Replicas copied, and the targets that could not be listed or written (by name)."""

    copied: tuple[Replica, ...]
    unreachable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "copied": [c.to_json() for c in self.copied],
            "unreachable": [{"target": t, "error": e} for t, e in sorted(self.unreachable.items())],
        }


def missing_replicas(
    cfg: LoadedConfig, holdings: dict[str, dict[str, str]]
) -> dict[tuple[str, str], list[str]]:
    """(from, to) -> snapshot ids to copy, given what each reachable target holds
    (`holdings[target][snapshot id] = source`). Copies come from the first target of the
    source (in configuration order) that holds the snapshot."""
    plan: dict[tuple[str, str], list[str]] = {}
    for name, settings in cfg.config.sources.items():
        reachable = [t for t in settings.targets if t in holdings]
        ids = {sid for t in reachable for sid, src in holdings[t].items() if src == name}
        for sid in sorted(ids):
            holders = [t for t in reachable if sid in holdings[t]]
            for dest in reachable:
                if sid not in holdings[dest]:
                    plan.setdefault((holders[0], dest), []).append(sid)
    return plan


def replicate(cfg: LoadedConfig) -> ReplicationReport:
    """Copy every snapshot of a configured source to those of its targets that lack it.

    A target that cannot be listed (unreachable) is skipped and named in the report;
    a copy failing on a store error names its destination there too. Other errors
    (a damaged snapshot, a missing repository) raise.
    """
    used = list(dict.fromkeys(t for s in cfg.config.sources.values() for t in s.targets))
    holdings: dict[str, dict[str, str]] = {}
    unreachable: dict[str, str] = {}
    for target in used:
        try:
            repo = wiring.open_repository(cfg, target)
            try:
                holdings[target] = {s.id: s.source for s in repo.snapshots()}
            finally:
                repo.store.close()
        except StoreError as exc:
            unreachable[target] = exc.message
    copied: list[Replica] = []
    for (src, dest), ids in missing_replicas(cfg, holdings).items():
        try:
            done = copy(cfg, src, dest, ids)
        except StoreError as exc:
            unreachable[dest] = exc.message
            continue
        copied += [Replica(sid, holdings[src][sid], src, dest) for sid in done]
    return ReplicationReport(tuple(copied), unreachable)
