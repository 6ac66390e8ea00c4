"""Repositories as things that exist or not: `init`, and the state of each target.

`init` is the only operation that creates a repository (like restic `init`):
every other command opening a target without one fails with
RepositoryMissingError (exit 2) naming the target, where it looked, and
`recoveryd init`. A typo in a target's path therefore never silently starts a
second repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from recoveryd.app import wiring
from recoveryd.config import FilesystemTarget, LoadedConfig, S3Target
from recoveryd.configtypes import DEFAULT_PACK_SIZE
from recoveryd.errors import StoreError

TargetStateName = Literal["ready", "missing", "unreachable"]


@dataclass(frozen=True)
class InitResult:
    """One target after `init`: created now, or already holding this key's repository."""

    target: str
    location: str
    created: bool

    def to_json(self) -> dict[str, object]:
        return {"target": self.target, "location": self.location, "created": self.created}


@dataclass(frozen=True)
class TargetState:
    """Whether a target holds a repository (`ready`), holds none (`missing`), or could not
    be asked (`unreachable`, with the error)."""

    target: str
    location: str
    state: TargetStateName
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "target": self.target,
            "location": self.location,
            "state": self.state,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def location(cfg: LoadedConfig, name: str) -> str:
    """Where target `name` keeps its repository, as an operator would look for it."""
    target = cfg.config.targets[name]
    if isinstance(target, FilesystemTarget):
        return str(cfg.resolve_path(target.path).absolute())
    return _s3_location(target)


def _s3_location(target: S3Target) -> str:
    prefix = target.prefix.strip("/")
    where = f"s3://{target.bucket}/{prefix + '/' if prefix else ''}"
    return f"{where} at {target.endpoint_url}" if target.endpoint_url else where


def init_repositories(cfg: LoadedConfig, targets: Sequence[str] = ()) -> list[InitResult]:
    """Create the repository of each named target (all configured ones when none named).

    A target already holding a repository that the master key opens is left as it is
    (`created` False); one made with another master key raises KeyFileError (exit 2).
    """
    from recoveryd.repo.layout import CONFIG_KEY
    from recoveryd.repo.repository import Repository

    names = [n for t in targets for n in wiring.target_names(cfg, t)] if targets else None
    key = wiring.master_key(cfg)
    out: list[InitResult] = []
    for name in dict.fromkeys(names or wiring.target_names(cfg)):
        store = wiring.open_store(cfg, name)
        try:
            if store.exists(CONFIG_KEY):
                wiring.open_repository(cfg, name, store=store)  # the same key opens it
                out.append(InitResult(name, location(cfg, name), created=False))
                continue
            cipher = cfg.config.encryption.cipher
            given = wiring.options(cfg, name)
            given["pack_size"] = given["pack_size"] or DEFAULT_PACK_SIZE
            Repository.init(store, key, cipher=cipher, name=name, **given)
            out.append(InitResult(name, location(cfg, name), created=True))
        finally:
            store.close()
    return out


def target_state(cfg: LoadedConfig, name: str) -> TargetState:
    """Ask target `name` whether it holds a repository (one request; no key needed)."""
    from recoveryd.repo.layout import CONFIG_KEY

    where = location(cfg, name)
    try:
        store = wiring.open_store(cfg, name)
        try:
            present = store.exists(CONFIG_KEY)
        finally:
            store.close()
    except StoreError as exc:
        return TargetState(name, where, "unreachable", exc.message)
    return TargetState(name, where, "ready" if present else "missing")
