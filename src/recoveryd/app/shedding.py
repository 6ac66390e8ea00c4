"""Load shedding for work started from the command line: refused, exit 5,
unless forced.

A CLI command has no governor of its own: the daemon's governor records every
level change in the state store, and a command that starts work reads the
level there (`governor.level.refusal`). Priorities (docs/PERFORMANCE.md, "Load shedding"): a backup
or a restore has its source's priority (a restore of a source that is not
configured any more counts as `normal`); verify, prune and copy are `low`.
So in an incident at `critical`, restores of critical sources still run.
"""

from __future__ import annotations

from collections.abc import Sequence

from recoveryd.app import wiring
from recoveryd.config import LoadedConfig
from recoveryd.errors import RefusedError

LOW = "low"
"""The priority of verify, prune and copy."""


def check_shedding(cfg: LoadedConfig, work: Sequence[tuple[str, str]]) -> None:
    """Raise RefusedError (exit 5) with the reason when any `(priority, job)` of `work`
    must wait at the recorded level. Without a state dir nothing was recorded: no refusal."""
    from recoveryd.governor.level import refusal

    st = wiring.existing_state(cfg)
    if st is None:
        return
    try:
        for priority, job in work:
            reason = refusal(st, priority, job=job)
            if reason is not None:
                raise RefusedError(reason)
    finally:
        st.close()


def check_backup(cfg: LoadedConfig, sources: Sequence[str] | None) -> None:
    """`check_shedding` for a backup of `sources` (all configured when None)."""
    names = wiring.source_names(cfg, list(sources) if sources else None)
    check_shedding(cfg, [(cfg.config.sources[n].priority, f"backup of {n}") for n in names])


def check_restore(cfg: LoadedConfig, source: str) -> None:
    """`check_shedding` for a restore of a snapshot of `source`."""
    settings = cfg.config.sources.get(source)
    priority = settings.priority if settings is not None else "normal"
    check_shedding(cfg, [(priority, f"restore of {source}")])
