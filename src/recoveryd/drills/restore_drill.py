"""Scheduled restore drills of a source (SPEC §2 `restore_drill`).

The drill is an in-memory playbook run by the ordinary runner, so it gets a
journal, a lock, a report and a state-store run like any other drill:
1. `fault` mark: the source is considered lost (the clock starts);
2. restore the newest snapshot into `into`, run the `checks`: `recovered`
   mark when they pass (RTO = time to checks passed, compared with `rto`);
3. the scratch database is dropped again (the restore step's automatic undo).
"""

from __future__ import annotations

import threading
from pathlib import Path

from recoveryd.config import LoadedConfig
from recoveryd.drills.models import LoadedPlaybook, Objectives, Playbook, RestoreOp, Step
from recoveryd.drills.result import DrillResult, ReportWriter
from recoveryd.drills.runner import DrillRunner
from recoveryd.errors import ConfigError


def restore_drill_playbook(cfg: LoadedConfig, source: str) -> LoadedPlaybook:
    """The playbook of `source`'s restore drill; ConfigError when it has none."""
    settings = cfg.config.sources.get(source)
    if settings is None:
        raise ConfigError(f"sources.{source}: unknown source; name one of the configured sources")
    spec = settings.restore_drill
    if spec is None:
        raise ConfigError(f"sources.{source}.restore_drill: not configured; add into and checks")
    restore = RestoreOp(
        source=source,
        into=spec.into,
        checks=list(spec.checks),
        drop_after=True,
        password_file=(str(cfg.resolve_path(spec.password_file)) if spec.password_file else None),
    )
    steps = [
        Step(name=f"{source} is considered lost", sleep=0.0, marks="fault"),
        Step(
            name=f"restore the newest snapshot of {source} and run the checks",
            restore=restore,
            marks="recovered",
        ),
    ]
    book = Playbook(
        apiVersion="recoveryd/v1",
        kind="Drill",
        name=f"restore-drill-{source}",
        description=f"Restore the newest snapshot of {source} into a scratch database.",
        objectives=Objectives(rto=spec.rto),
        steps=steps,
    )
    return LoadedPlaybook(
        playbook=book,
        path=f"{cfg.path}#sources.{source}.restore_drill",
        sha256="",
        hosts={},
        vars={},
        base_dir=str(cfg.path.parent),
    )


def run_restore_drill(
    cfg: LoadedConfig,
    source: str,
    *,
    cancel: threading.Event | None = None,
    state_dir: Path | None = None,
    report: ReportWriter | None = None,
) -> DrillResult:
    loaded = restore_drill_playbook(cfg, source)
    runner = DrillRunner(
        loaded,
        cfg,
        state_dir=state_dir or cfg.resolve_path(cfg.config.state_dir),
        yes=True,
        cancel=cancel,
        run_kind="restore_drill",
        run_source=source,
        report=report,
    )
    return runner.run()
