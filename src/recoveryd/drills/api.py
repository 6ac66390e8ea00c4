"""The drill runner's public API: what the CLI, the daemon and the governor call.

- `validate_playbook(path, cfg=None, vars=None) -> Playbook`: the whole
  document checked; ConfigError (exit 2) naming file, line and key.
- `check_playbook(path, cfg=None, vars=None) -> LoadedPlaybook`: the same, with the
  warnings (allowed but risky constructs) kept.
- `run_playbook(cfg, playbook, *, yes, dry_run, vars, cancel, force, state_dir) -> DrillResult`:
  `cancel` is the first interrupt (a signal: the run ends `interrupted`), `force` a second
  one (it also stops a destructive step that is running).
- `run_restore_drill(cfg, source, *, cancel) -> DrillResult`.
- `approve(state_dir, run_id, key_file, ...) -> (approver, file)`, `import_approval(state_dir,
  file)`, `approver_keys(cfg)`, `list_runs(state_dir, verify=) -> [RunSummary]`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recoveryd.config import LoadedConfig
from recoveryd.drills.approvals import approve, approver_keys, import_approval
from recoveryd.drills.history import RunSummary, list_runs
from recoveryd.drills.loader import load_playbook
from recoveryd.drills.models import LoadedPlaybook, Playbook
from recoveryd.drills.restore_drill import run_restore_drill
from recoveryd.drills.result import DrillResult, ReportWriter
from recoveryd.drills.runner import DrillRunner
from recoveryd.errors import ConfigError

__all__ = [
    "DrillResult",
    "RunSummary",
    "approve",
    "approver_keys",
    "check_playbook",
    "import_approval",
    "list_runs",
    "run_playbook",
    "run_restore_drill",
    "state_dir_of",
    "validate_playbook",
]


def validate_playbook(
    path: Path | str,
    cfg: LoadedConfig | None = None,
    vars: Mapping[str, str] | None = None,
) -> Playbook:
    """Load and check the whole playbook without touching anything."""
    return load_playbook(path, cfg, vars=vars).playbook


def check_playbook(
    path: Path | str,
    cfg: LoadedConfig | None = None,
    vars: Mapping[str, str] | None = None,
) -> LoadedPlaybook:
    """`validate_playbook`, keeping the warnings (`LoadedPlaybook.warnings`)."""
    return load_playbook(path, cfg, vars=vars)


def state_dir_of(cfg: LoadedConfig | None, state_dir: Path | None) -> Path:
    if state_dir is not None:
        return state_dir
    if cfg is None:
        raise ConfigError("drills need a state directory; pass --config or --state-dir")
    return cfg.resolve_path(cfg.config.state_dir)


def run_playbook(
    cfg: LoadedConfig | None,
    playbook: Path,
    *,
    yes: bool = False,
    dry_run: bool = False,
    vars: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    state_dir: Path | None = None,
    listener: Callable[[dict[str, Any]], None] | None = None,
    force: threading.Event | None = None,
    report: ReportWriter | None = None,
) -> DrillResult:
    """Validate, then run the playbook (see `runner.py` for the order of a run)."""
    loaded = load_playbook(playbook, cfg, vars=vars)
    runner = DrillRunner(
        loaded,
        cfg,
        state_dir=state_dir_of(cfg, state_dir),
        yes=yes,
        dry_run=dry_run,
        cancel=cancel,
        force=force,
        listener=listener,
        report=report,
    )
    return runner.run()
