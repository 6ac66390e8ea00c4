"""Which jobs are due, and what each source's newest snapshot is: for start-up and `--once`.

The store's listing counts as much as the local state: a source whose newest
snapshot in the store is recent is not due, even with a fresh state directory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from recoveryd.config import LoadedConfig
from recoveryd.daemon.rpo import SourceRpo, catch_up
from recoveryd.daemon.schedule import JobSpec, build_trigger
from recoveryd.errors import RecoverydError
from recoveryd.observe import get_logger
from recoveryd.state import StateStore

log = get_logger("recoveryd.daemon.due")


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


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def due_now(spec: JobSpec, last_start: datetime | None, now: datetime, tz: str | None) -> bool:
    """For `--once`: a job is due when a slot of its schedule passed since its last run
    (for a backup: its last run or the newest snapshot in the stores, whichever is later)."""
    if last_start is None:
        return True
    trigger = build_trigger(spec.schedule, key=spec.key, timezone=tz)
    nxt = trigger.get_next_fire_time(None, last_start)
    return nxt is not None and nxt <= now


def due_once(
    specs: Sequence[JobSpec],
    state: StateStore,
    known: Mapping[str, SourceRpo],
    now: datetime,
    tz: str | None,
) -> list[JobSpec]:
    """The jobs `daemon --once` runs: a slot of the schedule passed since the job's last
    run (for a backup, since the newest snapshot of its source if later), or the source is
    past its RPO."""
    overdue = set(catch_up(known, now))
    due = []
    for spec in specs:
        runs = state.runs(kind=f"daemon_{spec.kind}", source=spec.source, limit=1)
        if spec.source is None:
            runs = [r for r in runs if r.source is None]
        last = runs[0].started_at if runs else None
        if spec.kind == "backup" and spec.source and spec.source in known:
            last = _latest(last, known[spec.source].last_snapshot)
        if (spec.kind == "backup" and spec.source in overdue) or due_now(spec, last, now, tz):
            due.append(spec)
    return due


def newest_in_stores(
    copies: Callable[[], Mapping[tuple[str, str], datetime]],
    record: Callable[[str, str, datetime], None],
) -> dict[str, datetime]:
    """Newest snapshot time per source from the stores' listing (`copies()`: (source,
    target) -> newest there), each copy passed to `record`; empty when the stores cannot
    be listed (a store down must not stop the daemon starting: the local state is used)."""
    try:
        listed = copies()
    except RecoverydError as exc:
        log.warning("store_listing_failed", error=exc.message, fallback="local state")
        return {}
    except Exception as exc:  # noqa: BLE001 - same
        log.warning("store_listing_failed", error=str(exc), fallback="local state")
        return {}
    newest: dict[str, datetime] = {}
    for (source, target), at in listed.items():
        record(source, target, at)
        newest[source] = max(at, newest.get(source, at))
    return newest
