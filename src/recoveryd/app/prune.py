"""`prune`: each source's retention applied on each of its targets, then unreferenced data
deleted and stale S3 multipart uploads aborted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from recoveryd.app import wiring
from recoveryd.app.snapshots import existing_repositories
from recoveryd.app.walcheck import prune_binlogs, prune_wal
from recoveryd.config import LoadedConfig, Retention, S3Target

if TYPE_CHECKING:
    from recoveryd.repo.prune import PruneReport as TargetPruneReport
    from recoveryd.repo.retention import Policy
    from recoveryd.stores.base import ObjectStore


STALE_UPLOADS_AFTER = timedelta(hours=24)
"""An unfinished S3 multipart upload, or a `.tmp-*` file in a filesystem store, older than
this is debris of an interrupted write (a killed backup or copy)."""


@dataclass(frozen=True)
class PruneReport:
    """What prune did (or would do) on each target; `aborted_uploads`: stale multipart
    uploads aborted per S3 target, `removed_temp_objects`: stale `.tmp-*` files removed per
    filesystem target (none in a dry run)."""

    dry_run: bool
    targets: tuple[TargetPruneReport, ...]
    aborted_uploads: Mapping[str, int] = field(default_factory=dict)
    deleted_wal: Mapping[str, int] = field(default_factory=dict)  # WAL files per target
    removed_temp_objects: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "targets": [
                {
                    **t.to_json(),
                    "aborted_uploads": self.aborted_uploads.get(t.target, 0),
                    "deleted_wal": self.deleted_wal.get(t.target, 0),
                    "removed_temp_objects": self.removed_temp_objects.get(t.target, 0),
                }
                for t in self.targets
            ],
        }


def policy_of(retention: Retention | None) -> Policy:
    """The repository retention policy of a source's `retention` settings (None keeps all)."""
    from recoveryd.repo.retention import Policy

    if retention is None:
        return Policy()
    return Policy(
        keep_last=retention.keep_last,
        hourly=retention.hourly,
        daily=retention.daily,
        weekly=retention.weekly,
        monthly=retention.monthly,
        yearly=retention.yearly,
        within=timedelta(seconds=retention.within) if retention.within is not None else None,
    )


def prune(
    cfg: LoadedConfig,
    *,
    dry_run: bool = False,
    force: bool = False,
    stale_uploads_after: timedelta = STALE_UPLOADS_AFTER,
) -> PruneReport:
    """Apply each source's retention on each of its targets, then delete unreferenced data,
    then (not in a dry run) abort S3 multipart uploads started over `stale_uploads_after` ago
    and remove the `.tmp-*` files of filesystem stores older than that.

    Snapshots of sources no longer in the configuration are kept (never delete
    what nobody decided to delete), and so are the newest snapshot of each source and
    the newest one that verified on the target. Without `force`, a prune that would
    forget more than half of a source's snapshots on a target is refused before
    anything is deleted (ForceRequiredError, exit 5; see `app.pruneguard`).
    """
    from recoveryd.app.pruneguard import check_fraction, newest_verified
    from recoveryd.app.verification import verified_states

    reports: list[TargetPruneReport] = []
    aborted: dict[str, int] = {}
    wal: dict[str, int] = {}
    temp: dict[str, int] = {}
    st = wiring.state(cfg)
    try:
        with existing_repositories(cfg) as repos:
            states = verified_states(st)
            plans = []
            for repo in repos:
                policies = {
                    name: policy_of(src.retention)
                    for name, src in cfg.config.sources.items()
                    if repo.name in src.targets
                }
                infos = repo.snapshots()
                protect = newest_verified(infos, repo.name, states)
                if not force and not dry_run:
                    check_fraction(repo.name, infos, policies, protect)
                plans.append((repo, policies, protect))
            for repo, policies, protect in plans:
                run = st.start_run("prune", target=repo.name)
                try:
                    rep = repo.forget(policies, dry_run=dry_run, protect=protect)
                    wal[repo.name] = prune_wal(repo, dry_run=dry_run) + prune_binlogs(
                        repo, dry_run=dry_run
                    )
                    if not dry_run and isinstance(cfg.config.targets[repo.name], S3Target):
                        aborted[repo.name] = _abort_stale_uploads(repo.store, stale_uploads_after)
                    elif not dry_run:
                        temp[repo.name] = _remove_stale_temp(repo.store, stale_uploads_after)
                except BaseException as exc:
                    st.end_run(run, "failed", error=str(exc)[:500])
                    raise
                st.end_run(
                    run,
                    "ok",
                    details={
                        "dry_run": dry_run,
                        "forgotten": list(rep.forgotten),
                        "deleted_objects": rep.deleted_objects,
                        "repacked": rep.repacked,
                        "aborted_uploads": aborted.get(repo.name, 0),
                        "deleted_wal": wal[repo.name],
                        "removed_temp_objects": temp.get(repo.name, 0),
                    },
                )
                reports.append(rep)
    finally:
        st.close()
    return PruneReport(dry_run, tuple(reports), aborted, wal, temp)


def _remove_stale_temp(store: ObjectStore, older_than: timedelta) -> int:
    """Remove the stale `.tmp-*` files of a filesystem store (under its wrappers)."""
    from recoveryd.stores.filesystem import FilesystemStore
    from recoveryd.stores.wrappers import innermost

    inner = innermost(store)
    if not isinstance(inner, FilesystemStore):
        return 0
    return inner.remove_stale_temp_files(older_than)


def _abort_stale_uploads(store: ObjectStore, older_than: timedelta) -> int:
    """Abort the stale multipart uploads of an S3 store (under its wrappers); 0 for others."""
    from recoveryd.stores.s3 import S3Store
    from recoveryd.stores.wrappers import innermost

    inner = innermost(store)
    if not isinstance(inner, S3Store):
        return 0
    return inner.abort_stale_multipart_uploads(older_than)
