"""`config check`: beyond parsing, every secret reference resolves and every playbook named
validates."""

from __future__ import annotations

from dataclasses import dataclass, field

from recoveryd.app import wiring
from recoveryd.app.repos import TargetState, target_state
from recoveryd.config import (
    DirectorySource,
    LoadedConfig,
    MysqlSource,
    PostgresSource,
    S3Target,
    SqliteSource,
)
from recoveryd.errors import ConfigError, KeyFileError
from recoveryd.secrets import resolve_secret


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
