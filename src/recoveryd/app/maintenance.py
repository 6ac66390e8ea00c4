"""Maintenance operations: prune with retention, master key generate/rotate, config check."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from recoveryd.app import wiring
from recoveryd.app.repos import TargetState, target_state
from recoveryd.app.snapshots import existing_repositories
from recoveryd.app.walcheck import prune_binlogs, prune_wal
from recoveryd.config import (
    DirectorySource,
    LoadedConfig,
    MysqlSource,
    PostgresSource,
    Retention,
    S3Target,
    SqliteSource,
)
from recoveryd.errors import ConfigError, KeyFileError
from recoveryd.secrets import resolve_secret

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


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def generate_key(cfg: LoadedConfig, *, force: bool = False) -> Path:
    """Create `encryption.key_file` (mode 0600). An existing key is kept unless `force`,
    and even then moved aside (`<file>.replaced-<time>`), never destroyed."""
    from recoveryd.repo.keys import generate_master_key

    path = wiring.key_path(cfg)
    if path.exists() and force:
        path.rename(path.with_name(f"{path.name}.replaced-{_stamp()}"))
    generate_master_key(path)
    return path


@dataclass(frozen=True)
class KeyRotation:
    key_file: str
    previous: str
    targets: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"key_file": self.key_file, "previous": self.previous, "targets": list(self.targets)}


def rotate_key(cfg: LoadedConfig) -> KeyRotation:
    """A new master key; every target's data keys re-wrapped under it, plus a new data key
    for new writes. Old snapshots stay restorable with the new key alone.

    Crash-safe: the new key is written to `<file>.new` first and only replaces
    the key file once every repository is re-wrapped; running it again after
    an interruption resumes with the same new key. The old key is kept as
    `<file>.retired-<time>` (mode 0600): destroy it once the new key is copied
    offline.
    """
    from recoveryd.repo.keys import generate_master_key, load_master_key

    path = wiring.key_path(cfg)
    old = wiring.master_key(cfg)
    pending = path.with_name(path.name + ".new")
    new = load_master_key(pending) if pending.exists() else generate_master_key(pending)
    done: list[str] = []
    for name in wiring.target_names(cfg):
        from recoveryd.repo.layout import CONFIG_KEY
        from recoveryd.repo.repository import Repository

        store = wiring.open_store(cfg, name)
        try:
            if not store.exists(CONFIG_KEY):
                continue
            try:
                repo = Repository.open(store, old, name=name)
            except KeyFileError:
                Repository.open(store, new, name=name)  # already re-wrapped in an earlier run
                done.append(name)
                continue
            repo.rotate_data_key()
            repo.rewrap(new)
            done.append(name)
        finally:
            store.close()
    retired = path.with_name(f"{path.name}.retired-{_stamp()}")
    path.replace(retired)
    pending.replace(path)
    _fsync_dir(path.parent)
    return KeyRotation(str(path), str(retired), tuple(done))


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class ConfigSummary:
    """`targets`: the state of each target's repository (ready, missing, unreachable);
    `warnings`: what an operator should fix before the first backup."""

    playbooks: int
    warnings: tuple[str, ...] = field(default_factory=tuple)
    targets: tuple[TargetState, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "playbooks": self.playbooks,
            "warnings": list(self.warnings),
            "targets": [t.to_json() for t in self.targets],
        }


def check_config(cfg: LoadedConfig) -> ConfigSummary:
    """Beyond parsing: every secret reference resolves, every schedule expression parses
    (backups, verifies, restore drills, drills, prune), every playbook named validates, every
    approver's public key reads.

    Raises ConfigError (exit 2) for what would make an operation fail; returns
    warnings for what an operator should know (no key file yet).
    """
    base = cfg.path.parent
    c = cfg.config
    for name, src in c.sources.items():
        if isinstance(src, PostgresSource | MysqlSource):
            if src.password_file is not None:
                resolve_secret(src.password_file, base, setting=f"sources.{name}.password_file")
            if src.password is not None:
                _reference_only(src.password, f"sources.{name}.password")
                resolve_secret(src.password, base, setting=f"sources.{name}.password")
    for name, t in c.targets.items():
        if isinstance(t, S3Target):
            for attr in ("credentials_file", "access_key_id", "secret_access_key"):
                ref = getattr(t, attr)
                if ref is None:
                    continue
                if attr != "credentials_file":
                    _reference_only(ref, f"targets.{name}.{attr}")
                resolve_secret(ref, base, setting=f"targets.{name}.{attr}")
            if t.ca_bundle is not None and not cfg.resolve_path(t.ca_bundle).is_file():
                raise ConfigError(f"targets.{name}.ca_bundle: {t.ca_bundle} not found")
    warnings: list[str] = []
    try:
        wiring.master_key(cfg)
    except KeyFileError as exc:
        warnings.append(exc.message)
    playbooks = _playbooks(cfg)
    for key, ref, variables in playbooks:
        _check_playbook(cfg, key, ref, variables)
    _check_approvers(cfg)
    warnings += _missing_source_paths(cfg)
    states = tuple(target_state(cfg, name) for name in c.targets)
    for ts in states:
        if ts.state == "missing":
            warnings.append(
                f"target {ts.target}: no repository at {ts.location}; create it with "
                f"`recoveryd init {ts.target}` (or fix the path if it is a typo)"
            )
        elif ts.state == "unreachable":
            warnings.append(f"target {ts.target}: unreachable: {ts.error}")
    return ConfigSummary(len(playbooks), tuple(warnings), states)


def _missing_source_paths(cfg: LoadedConfig) -> list[str]:
    """A local SQLite file or directory a source names that does not exist."""
    out = []
    for name, src in cfg.config.sources.items():
        if isinstance(src, SqliteSource) and not cfg.resolve_path(src.path).is_file():
            out.append(
                f"sources.{name}.path: SQLite database {cfg.resolve_path(src.path)} not found; "
                "fix the path"
            )
        if isinstance(src, DirectorySource) and not cfg.resolve_path(src.path).is_dir():
            out.append(
                f"sources.{name}.path: directory {cfg.resolve_path(src.path)} not found; "
                "fix the path"
            )
    return out


def _check_approvers(cfg: LoadedConfig) -> None:
    """Every approver's public key (or key file) reads as an Ed25519 key."""
    from recoveryd.drills.api import approver_keys

    approver_keys(cfg)


def _reference_only(ref: str, setting: str) -> None:
    if not ref.startswith(("env:", "credential:")):
        raise ConfigError(
            f"{setting}: write a reference (env:NAME or credential:NAME), not the secret itself"
        )


def _playbooks(cfg: LoadedConfig) -> list[tuple[str, str, dict[str, str]]]:
    """(key path, playbook reference, vars) of every playbook the configuration names."""
    out = [
        (f"drills[{i}].playbook", d.playbook, dict(d.vars)) for i, d in enumerate(cfg.config.drills)
    ]
    gov = cfg.config.governor
    if gov is not None:
        for when, actions in (("on_enter", gov.on_enter), ("on_exit", gov.on_exit)):
            for level in ("elevated", "critical"):
                for i, ref in enumerate(getattr(actions, level)):
                    out.append((f"governor.{when}.{level}[{i}]", ref, {}))
    return out


def _check_playbook(cfg: LoadedConfig, key: str, ref: str, variables: dict[str, str]) -> None:
    """The playbook exists and validates completely (ConfigError naming it otherwise)."""
    from recoveryd.drills import validate_playbook

    path = cfg.resolve_path(ref)
    if not path.is_file():
        raise ConfigError(f"{key}: playbook {ref} not found; fix the path (relative to {cfg.path})")
    validate_playbook(path, cfg, vars=variables)
