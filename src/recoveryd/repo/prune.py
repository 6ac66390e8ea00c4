"""Retention (`forget`) and garbage collection (`prune`) of a repository.

Under an exclusive lock (so no backup, restore, verify or copy runs; stale
locks of crashed processes are removed while taking it): apply each source's
policy and delete the manifests it drops, then delete every loose chunk no
remaining manifest references — which includes the leftovers of crashed backups —
and collect packs (`repo.repack`): packs without a live chunk are deleted, packs
mostly unused are rewritten, and the index is consolidated into one.
Objects still under Object Lock retention are skipped and reported, not errors.
If any manifest or index object cannot be read, prune refuses: it cannot know
what that snapshot references, or where the live chunks are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recoveryd.errors import IntegrityError, StoreError
from recoveryd.repo import repack, retention
from recoveryd.repo.layout import DATA_PREFIX, pack_key

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository


@dataclass(frozen=True)
class PruneReport:
    target: str
    dry_run: bool
    kept: tuple[str, ...]  # snapshot ids kept
    forgotten: tuple[str, ...]  # snapshot ids removed (or that would be, in a dry run)
    deleted_objects: int  # unreferenced loose chunks, packs and old indexes removed
    deleted_bytes: int
    skipped_locked: tuple[str, ...]  # object keys left because Object Lock retains them
    repacked: int = 0  # packs rewritten (their live chunks moved into new packs)

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "dry_run": self.dry_run,
            "kept": list(self.kept),
            "forgotten": list(self.forgotten),
            "deleted_objects": self.deleted_objects,
            "deleted_bytes": self.deleted_bytes,
            "skipped_locked": list(self.skipped_locked),
            "repacked": self.repacked,
        }


def _delete(repo: Repository, key: str) -> bool:
    """Delete one object: True when gone, False when Object Lock retains it."""
    try:
        repo.store.delete(key)
    except StoreError as exc:
        if exc.transient:
            raise
        return False
    return True


def forget_and_prune(
    repo: Repository,
    policies: Mapping[str, retention.Policy],
    *,
    dry_run: bool = False,
    protect: Collection[str] = (),
) -> PruneReport:
    """Apply `policies` (by source name; other sources keep everything), then prune.

    The newest snapshot of each source and the ids in `protect` are always kept."""
    with repo.lock(exclusive=not dry_run, operation="prune"):
        ids = repo.snapshot_ids()
        manifests = {}
        for sid in ids:
            try:
                manifests[sid] = repo.manifest(sid)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"{exc.message.rstrip('.')}; prune refuses to run while a manifest "
                    "cannot be read",
                    snapshot=sid,
                    obj=exc.obj,
                ) from None
        entries = [(m.id, m.source, m.end_time) for m in manifests.values()]
        selected = retention.select_forget(entries, policies, protect)
        drop = [sid for ids in selected.values() for sid in ids]
        skipped: list[str] = []
        forgotten: list[str] = []
        for sid in drop:
            if dry_run:
                forgotten.append(sid)
                continue
            try:
                repo.forget_manifest(sid)
                forgotten.append(sid)
            except StoreError:
                skipped.append(f"snapshots/{sid}")
        live = [m for sid, m in manifests.items() if sid not in forgotten]
        referenced = {c.id for m in live for c in m.chunks}
        garbage = [
            obj
            for obj in repo.store.list(DATA_PREFIX)
            if obj.key.rsplit("/", 1)[-1] not in referenced
        ]
        outcomes = [True] * len(garbage)
        if not dry_run:
            with ThreadPoolExecutor(max_workers=max(1, repo.concurrency)) as pool:
                outcomes = list(pool.map(lambda o: _delete(repo, o.key), garbage))
        skipped += [o.key for o, ok in zip(garbage, outcomes, strict=True) if not ok]
        removed = [o for o, ok in zip(garbage, outcomes, strict=True) if ok]
        deleted = len(removed)
        deleted_bytes = sum(o.size for o in removed)
        packs = _collect_packs(repo, referenced, dry_run=dry_run)
        skipped += packs.skipped
        return PruneReport(
            target=repo.name,
            dry_run=dry_run,
            kept=tuple(sorted(m.id for m in live)),
            forgotten=tuple(forgotten),
            deleted_objects=deleted + len(packs.deleted),
            deleted_bytes=deleted_bytes + packs.deleted_bytes,
            skipped_locked=tuple(skipped),
            repacked=len(packs.repacked),
        )


@dataclass
class _PackOutcome:
    deleted: list[str]
    deleted_bytes: int
    skipped: list[str]
    repacked: list[str]


def _collect_packs(repo: Repository, referenced: set[str], *, dry_run: bool) -> _PackOutcome:
    """Delete and rewrite packs (see `repo.repack`); in a dry run, only say what would go."""
    try:
        p = repack.plan(repo, referenced, may_repack=not repo.capabilities().object_lock)
    except IntegrityError as exc:
        raise IntegrityError(
            f"{exc.message.rstrip('.')}; prune refuses to run while an index object cannot be read",
            obj=exc.obj,
        ) from None
    if dry_run:
        gone = [*p.drop, *p.repack]
        keys = [pack_key(g) for g in gone]
        return _PackOutcome(keys, sum(p.sizes[g] for g in gone), [], list(p.repack))
    rewrite = len(p.index.index_ids) > 1 and not repo.capabilities().object_lock
    done = repack.execute(repo, p, lambda key: _delete(repo, key), rewrite_index=rewrite)
    return _PackOutcome(done.deleted, done.deleted_bytes, done.skipped, list(p.repack))
