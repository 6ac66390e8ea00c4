"""What `recoveryd status` shows: the daemon, the load level, and each source against its RPO.

Built from local files (`daemon.json`, the lock, the state store), so it
answers instantly even when a store is down. When the state store knows no
snapshot of a source (a lost or new state directory), the stores' listing is
asked instead (`listing`, given by the caller): the store is the truth, and a
source whose store holds a fresh snapshot is not overdue. `status --json`:
`{"daemon": {...}, "level", "sources": {NAME: {"last_snapshot", "age_seconds",
"rpo_seconds", "overdue", "last_backup_result", "last_backup", "last_verify",
"last_restore_drill",
"next_run", "targets": {TARGET: {"last_snapshot", "age_seconds", "overdue"}},
"from": "state" | "store"}}}`. A run (`last_backup`, `last_verify`...) is `{"time",
"result", "error"?, "member"?, "slot"?}`: in fleet mode, the member that ran it and its
slot; `daemon.fleet` is the member's view (member, group, members, owned jobs, isolated).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from recoveryd.config import LoadedConfig
from recoveryd.daemon.rpo import SourceRpo, age_seconds, is_overdue
from recoveryd.daemon.runtime import read_status, running_daemon_pid
from recoveryd.state import Run, StateStore, iso


def _newest(state: StateStore, kinds: tuple[str, ...], source: str, **kw: Any) -> Run | None:
    runs = [r for k in kinds for r in state.runs(kind=k, source=source, limit=1, **kw)]
    return max(runs, key=lambda r: r.started_at) if runs else None


def _run_json(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    out: dict[str, Any] = {
        "time": iso(run.ended_at or run.started_at),
        "result": run.result,
    }
    if run.error:
        out["error"] = run.error
    if run.details.get("run_id"):
        out["run_id"] = run.details["run_id"]
    if run.details.get("fleet_member"):  # fleet mode: who ran it, for which slot
        out["member"] = run.details["fleet_member"]
        out["slot"] = run.details.get("fleet_slot")
    return out


Listing = Callable[[], Mapping[str, Mapping[str, datetime]]]
"""Source -> target -> end time of the newest snapshot there, from the stores."""


def build_status(
    cfg: LoadedConfig, state_dir: Path, now: datetime, listing: Listing | None = None
) -> dict[str, Any]:
    """The status document (see the module docstring)."""
    pid = running_daemon_pid(state_dir)
    doc = read_status(state_dir) or {}
    running = pid is not None
    daemon: dict[str, Any] = {"running": running, "pid": pid if pid and pid > 0 else None}
    if running:
        for key in (
            "state",
            "started",
            "updated",
            "activity",
            "next_runs",
            "metrics",
            "governor",
            "fleet",
        ):
            daemon[key] = doc.get(key)
    elif doc:
        daemon["last_seen"] = doc.get("updated")
    next_runs: dict[str, Any] = daemon.get("next_runs") or {}
    try:
        state = StateStore(state_dir) if (state_dir / "state.db").exists() else None
    except (OSError, sqlite3.Error) as exc:  # e.g. an operator outside the recoveryd group
        daemon["state_store"] = f"unreadable ({exc}); run status as the recoveryd user"
        state = None
    store = _Lazy(listing)
    try:
        sources = {
            name: _source(cfg, name, state, store, now, next_runs.get(f"backup:{name}"))
            for name in cfg.config.sources
        }
    finally:
        if state is not None:
            state.close()
    return {
        "daemon": daemon,
        "level": doc.get("level") if running else None,
        "sources": sources,
    }


class _Lazy:
    """The stores' listing, asked at most once and only when needed."""

    def __init__(self, listing: Listing | None) -> None:
        self._listing = listing
        self._value: Mapping[str, Mapping[str, datetime]] | None = None

    def get(self, source: str) -> Mapping[str, datetime]:
        if self._listing is None:
            return {}
        if self._value is None:
            self._value = self._listing()
        return self._value.get(source, {})


def _per_target(state: StateStore, name: str, targets: list[str]) -> dict[str, datetime]:
    """Target -> newest snapshot of `name` committed there, by backups or replica copies."""
    out: dict[str, datetime] = {}
    for run in state.runs(kind="backup", source=name, result="ok", limit=500):
        when = run.ended_at or run.started_at
        for t in run.details.get("targets") or {}:
            if t in targets and (t not in out or when > out[t]):
                out[t] = when
    for run in state.runs(kind="copy", source=name, result="ok", limit=500):
        when = run.ended_at or run.started_at
        t = run.target or ""
        if t in targets and (t not in out or when > out[t]):
            out[t] = when
    return out


def _source(
    cfg: LoadedConfig,
    name: str,
    state: StateStore | None,
    store: _Lazy,
    now: datetime,
    next_run: Any,
) -> dict[str, Any]:
    src = cfg.config.sources[name]
    last = _newest(state, ("backup", "daemon_backup"), name, result="ok") if state else None
    when = (last.ended_at or last.started_at) if last else None
    targets = _per_target(state, name, src.targets) if state else {}
    origin = "state"
    if when is None:
        targets = dict(store.get(name))
        when = max(targets.values(), default=None)
        origin = "store" if when is not None else "state"
    age = age_seconds(when, now)
    result = _newest(state, ("backup", "daemon_backup"), name) if state else None
    return {
        "last_snapshot": iso(when) if when else None,
        "age_seconds": round(age, 1) if age is not None else None,
        "rpo_seconds": src.rpo,
        "overdue": is_overdue(SourceRpo(name, src.rpo, when), now),
        "last_backup_result": result.result if result else None,
        "last_backup": _run_json(result),
        "last_verify": _run_json(_newest(state, ("verify", "daemon_verify"), name))
        if state
        else None,
        "last_restore_drill": _run_json(
            _newest(state, ("restore_drill", "daemon_restore_drill"), name)
        )
        if state
        else None,
        "next_run": next_run,
        "targets": {t: _target_json(targets.get(t), src.rpo, now) for t in src.targets},
        "from": origin,
    }


def _target_json(when: datetime | None, rpo: float | None, now: datetime) -> dict[str, Any]:
    age = age_seconds(when, now)
    return {
        "last_snapshot": iso(when) if when else None,
        "age_seconds": round(age, 1) if age is not None else None,
        "overdue": is_overdue(SourceRpo("", rpo, when), now),
    }
