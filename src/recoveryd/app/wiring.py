"""Composition: configuration -> stores, repositories, sources (secrets resolved by
reference), state, master key.

The one place that turns settings into adapters. Everything that opens a
store or a source for an operation goes through here, so errors name the
configuration key to fix.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoveryd.config import (
    DirectorySource,
    LoadedConfig,
    MysqlSource,
    PostgresSource,
    S3Target,
    SqliteSource,
)
from recoveryd.errors import ConfigError, RepositoryMissingError, UsageError
from recoveryd.secrets import resolve_secret, secret_path
from recoveryd.state import StateStore

if TYPE_CHECKING:
    from recoveryd.remote.runner import SshRunner
    from recoveryd.repo.keys import MasterKey
    from recoveryd.repo.repository import Repository
    from recoveryd.sources.base import CommandRunner, Source
    from recoveryd.stores.base import ObjectStore


def state(cfg: LoadedConfig) -> StateStore:
    """The local state store under `state_dir` (created when missing)."""
    path = cfg.resolve_path(cfg.config.state_dir)
    try:
        return StateStore(path)
    except OSError as exc:
        raise ConfigError(
            f"state_dir: cannot use {path} ({exc.strerror}); make it writable for this user"
        ) from None


def existing_state(cfg: LoadedConfig) -> StateStore | None:
    """The state store when `state_dir` already exists, else None (read-only callers:
    nothing to read there, and nothing to create)."""
    if not cfg.resolve_path(cfg.config.state_dir).is_dir():
        return None
    return state(cfg)


def master_key(cfg: LoadedConfig) -> MasterKey:
    """The master key of `encryption.key_file`; KeyFileError (exit 2) naming the fix."""
    from recoveryd.repo.keys import load_master_key

    return load_master_key(key_path(cfg))


def key_path(cfg: LoadedConfig) -> Path:
    """The master key file: a path, or `credential:NAME` (`$CREDENTIALS_DIRECTORY/NAME`,
    the copy systemd's `LoadCredential=` hands over)."""
    ref = cfg.config.encryption.key_file
    return secret_path(ref, cfg.path.parent, setting="encryption.key_file").absolute()


def key_is_credential(cfg: LoadedConfig) -> bool:
    """Whether the key comes from systemd (a read-only copy: not generated or rotated there)."""
    return cfg.config.encryption.key_file.startswith("credential:")


def target_names(cfg: LoadedConfig, target: str | None = None) -> list[str]:
    """All configured targets, or just `target` (UsageError when unknown)."""
    if target is None:
        return list(cfg.config.targets)
    if target not in cfg.config.targets:
        known = ", ".join(sorted(cfg.config.targets))
        raise UsageError(f'unknown target "{target}"; use one of: {known}')
    return [target]


def source_names(cfg: LoadedConfig, names: list[str] | None) -> list[str]:
    """All configured sources, or the named ones (UsageError naming an unknown one)."""
    if not names:
        if not cfg.config.sources:
            raise UsageError(f"{cfg.path}: no sources are configured; add one under sources")
        return list(cfg.config.sources)
    for n in names:
        if n not in cfg.config.sources:
            known = ", ".join(sorted(cfg.config.sources)) or "none configured"
            raise UsageError(f'unknown source "{n}"; use one of: {known}')
    return list(dict.fromkeys(names))


def open_store(
    cfg: LoadedConfig, name: str, *, cancel: threading.Event | None = None
) -> ObjectStore:
    """The ObjectStore of target `name`, with its wrappers (retries, bandwidth).

    Object Lock configured on a store that does not enforce it is refused by
    the factory, naming the target, before anything is written. `cancel`, the stop of
    the run the store is for, ends its waits for bandwidth and retries at once.
    """
    from recoveryd.stores.factory import open_store as factory_open

    base = cfg.path.parent

    def secret(ref: str) -> str:
        return resolve_secret(ref, base, setting=f"targets.{name}")

    target = cfg.config.targets[name]
    return factory_open(name, target, base_dir=base, resolve_secret=secret, cancel=cancel)


def options(cfg: LoadedConfig, target_name: str) -> dict[str, Any]:
    """The repository options a target's settings give (Object Lock, upload concurrency,
    pack size)."""
    target = cfg.config.targets[target_name]
    lock = target.object_lock if isinstance(target, S3Target) else None
    return {
        "retention_days": lock.days if lock else None,
        "lock_mode": lock.mode if lock else None,
        "concurrency": target.upload_concurrency,
        "pack_size": target.pack_size,
    }


def open_repository(
    cfg: LoadedConfig,
    target_name: str,
    *,
    store: ObjectStore | None = None,
    cancel: threading.Event | None = None,
) -> Repository:
    """The repository of a target; RepositoryMissingError (exit 2, naming the target, where
    it looked and `recoveryd init`) when it holds none: only `init` creates repositories.

    `store` reuses an already opened store of that target; else one is opened with
    `cancel` (see `open_store`).
    """
    from recoveryd.repo.repository import Repository

    target_names(cfg, target_name)
    key = master_key(cfg)
    owned = store is None
    store = store or open_store(cfg, target_name, cancel=cancel)
    try:
        return Repository.open(store, key, name=target_name, **options(cfg, target_name))
    except RepositoryMissingError:
        from recoveryd.app.repos import location

        if owned:
            store.close()
        raise RepositoryMissingError(target_name, location(cfg, target_name)) from None
    except BaseException:
        if owned:
            store.close()
        raise


SourceSettings = PostgresSource | MysqlSource | SqliteSource | DirectorySource


def make_source(
    name: str,
    settings: SourceSettings,
    *,
    base_dir: Path,
    runner: CommandRunner | None,
    tmp_dir: Path | None = None,
) -> Source:
    """The Source for `settings` through the sources factory; local unless `runner` says
    otherwise.

    The password reference (`password_file` or `password`) is resolved now, so
    a missing secret fails with the setting's name before any work starts.
    """
    from recoveryd.sources.factory import build_source
    from recoveryd.sources.local import LocalRunner

    has_file = isinstance(settings, PostgresSource | MysqlSource) and settings.password_file
    key = "password_file" if has_file else "password"

    def secret(ref: str) -> str:
        return resolve_secret(ref, base_dir, setting=f"sources.{name}.{key}")

    return build_source(
        name,
        settings,
        runner=runner or LocalRunner(),
        resolve_secret=secret,
        base_dir=base_dir,
        tmp_dir=tmp_dir,
    )


@contextlib.contextmanager
def source_session(cfg: LoadedConfig, name: str) -> Iterator[Source]:
    """The Source of `sources.<name>` for one operation, staging under `state_dir`; over SSH
    when `via_ssh` names a host, the connection being closed at the end."""
    settings = cfg.config.sources[name]
    runner: SshRunner | None = None
    if settings.via_ssh is not None:
        from recoveryd.remote import ssh_runner

        runner = ssh_runner(cfg.config.hosts[settings.via_ssh], base_dir=cfg.path.parent)
    try:
        with staging(cfg, f"source-{name}") as tmp_dir:
            yield make_source(
                name, settings, base_dir=cfg.path.parent, runner=runner, tmp_dir=tmp_dir
            )
    finally:
        if runner is not None:
            with contextlib.suppress(Exception):
                runner.close()


@contextlib.contextmanager
def staging(cfg: LoadedConfig, purpose: str) -> Iterator[Path]:
    """A private folder (0700) under `state_dir` for what a source must stage locally (a
    SQLite copy, a password file); removed on exit, swept by the next run after a crash."""
    from recoveryd.staging import staging_folder

    path = cfg.resolve_path(cfg.config.state_dir)
    stack = contextlib.ExitStack()
    try:
        folder = stack.enter_context(staging_folder(path, purpose))
    except OSError as exc:
        raise ConfigError(
            f"state_dir: cannot stage files under {path} ({exc.strerror}); "
            "make it writable for this user"
        ) from None
    with stack:
        yield folder
