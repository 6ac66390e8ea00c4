"""What the daemon knows at start-up of each source's newest snapshot, and which jobs
`daemon --once` runs: those whose schedule had a slot since their last run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from recoveryd.config import LoadedConfig
from recoveryd.daemon.rpo import SourceRpo
from recoveryd.daemon.schedule import JobSpec, build_trigger
from recoveryd.state import StateStore


def last_successes(state: StateStore, source: str) -> datetime | None:
    """Newest successful snapshot of `source` recorded locally (by the app or the daemon)."""
    found = [
        r.ended_at or r.started_at
        for kind in ("backup", "daemon_backup")
        for r in state.runs(kind=kind, source=source, result="ok", limit=1)
    ]
    return max(found) if found else None


def source_rpos(
    cfg: LoadedConfig, state: StateStore, from_store: Mapping[str, datetime]
) -> dict[str, SourceRpo]:
    """Each source's RPO and newest snapshot: the store's listing, else the local state."""
    out: dict[str, SourceRpo] = {}
    for name, src in cfg.config.sources.items():
        times = [t for t in (from_store.get(name), last_successes(state, name)) if t is not None]
        out[name] = SourceRpo(name, src.rpo, max(times) if times else None)
    return out


def due_now(spec: JobSpec, last_start: datetime | None, now: datetime, tz: str | None) -> bool:
    """For `--once`: a job is due when a slot of its schedule passed since its last run."""
    if last_start is None:
        return True
    trigger = build_trigger(spec.schedule, key=spec.key, timezone=tz)
    nxt = trigger.get_next_fire_time(None, last_start)
    return nxt is not None and nxt <= now
