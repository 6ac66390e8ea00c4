"""`config check`: beyond parsing, every secret reference resolves and every playbook named
validates."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

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
from recoveryd.errors import ConfigError, KeyFileError, problems_error
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


def check_config(cfg: LoadedConfig, also: Sequence[Callable[[], object]] = ()) -> ConfigSummary:
    """Beyond parsing: every secret reference resolves, every schedule expression parses
    (backups, verifies, restore drills, drills, prune), every playbook named validates, every
    approver's public key reads.

    Raises ConfigError (exit 2) for what would make an operation fail, every problem at
    once (with those of the checks in `also`); returns warnings for what an operator
    should know (no key file yet).
    """
    problems: list[ConfigError] = []

    def collect(check: Callable[[], object]) -> None:
        try:
            check()
        except ConfigError as exc:
            problems.append(cfg.document.locate(exc))

    _check_secrets(cfg, collect)
    for check in also:
        collect(check)  # e.g. the schedules, whose parser lives with the daemon
    warnings: list[str] = []
    try:
        wiring.master_key(cfg)
    except KeyFileError as exc:
        warnings.append(exc.message)
    playbooks = _playbooks(cfg)
    for key, ref, variables in playbooks:
        collect(partial(_check_playbook, cfg, key, ref, variables, warnings))
    collect(partial(_check_approvers, cfg))
    if problems:
        raise problems_error(problems)
    warnings += _missing_source_paths(cfg)
    states = tuple(target_state(cfg, name) for name in cfg.config.targets)
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


def _check_secrets(cfg: LoadedConfig, collect: Callable[[Callable[[], object]], None]) -> None:
    """Every secret reference resolves; secrets are references, never values."""
    c = cfg.config
    for name, src in c.sources.items():
        if isinstance(src, PostgresSource | MysqlSource):
            refs = {"password_file": src.password_file, "password": src.password}
            _check_refs(cfg, collect, f"sources.{name}", refs, ("password",))
    for name, t in c.targets.items():
        if isinstance(t, S3Target):
            refs = {
                "credentials_file": t.credentials_file,
                "access_key_id": t.access_key_id,
                "secret_access_key": t.secret_access_key,
            }
            _check_refs(
                cfg, collect, f"targets.{name}", refs, ("access_key_id", "secret_access_key")
            )
            if t.ca_bundle is not None and not cfg.resolve_path(t.ca_bundle).is_file():
                collect(_missing(f"targets.{name}.ca_bundle", t.ca_bundle))


def _check_refs(
    cfg: LoadedConfig,
    collect: Callable[[Callable[[], object]], None],
    prefix: str,
    refs: Mapping[str, str | None],
    references_only: tuple[str, ...],
) -> None:
    base = cfg.path.parent
    for attr, ref in refs.items():
        if ref is None:
            continue
        setting = f"{prefix}.{attr}"
        if attr in references_only and not ref.startswith(("env:", "credential:")):
            # the value is the secret itself: never echo it in a "not found" error
            collect(partial(_reference_only, ref, setting))
            continue
        collect(partial(resolve_secret, ref, base, setting=setting))


def _missing(key: str, value: str) -> Callable[[], None]:
    def fail() -> None:
        raise ConfigError(f"{value} not found; fix the path", key=key)

    return fail


def _check_approvers(cfg: LoadedConfig) -> None:
    """Every approver's public key (or key file) reads as an Ed25519 key."""
    from recoveryd.drills.api import approver_keys

    approver_keys(cfg)


def _reference_only(ref: str, setting: str) -> None:
    if not ref.startswith(("env:", "credential:")):
        raise ConfigError(
            "write a reference (env:NAME or credential:NAME), not the secret itself", key=setting
        )


def _playbooks(cfg: LoadedConfig) -> list[tuple[str, str, dict[str, str]]]:
    """(key path, playbook reference, vars) of every playbook the configuration names."""
    out = [
        (f"drills[{i}].playbook", d.playbook, dict(d.vars)) for i, d in enumerate(cfg.config.drills)
    ]
    gov = cfg.config.governor
    if gov is not None:
        for when, actions in (("on_enter", gov.on_enter), ("on_exit", gov.on_exit)):
            for level, refs in (("elevated", actions.elevated), ("critical", actions.critical)):
                for i, ref in enumerate(refs):
                    out.append((f"governor.{when}.{level}[{i}]", ref, {}))
    return out


def _check_playbook(
    cfg: LoadedConfig, key: str, ref: str, variables: dict[str, str], warnings: list[str]
) -> None:
    """The playbook exists and validates completely (ConfigError naming it otherwise); its
    warnings (as `drill validate` gives them) join `warnings`, after the key naming it."""
    from recoveryd.drills.api import check_playbook

    path = cfg.resolve_path(ref)
    if not path.is_file():
        raise ConfigError(f"{key}: playbook {ref} not found; fix the path (relative to {cfg.path})")
    warnings.extend(f"{key}: {w}" for w in check_playbook(path, cfg, vars=variables).warnings)
