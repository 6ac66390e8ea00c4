"""What `recoveryd status` shows: the daemon, the load level, and each source against its RPO.

Built from local files only (`daemon.json`, the lock, the state store), so it
answers instantly even when a store is down. SPEC §1 `status --json`:
`{"daemon": {...}, "level", "sources": {NAME: {"last_snapshot", "age_seconds",
"rpo_seconds", "overdue", "last_verify", "last_restore_drill", "next_run"}}}`.
"""

from __future__ import annotations

import sqlite3
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
    return out


def build_status(cfg: LoadedConfig, state_dir: Path, now: datetime) -> dict[str, Any]:
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
            "unavailable",
            "metrics",
            "governor",
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
    if state is None:
        unknown = {
            n: _unknown(s.rpo, next_runs.get(f"backup:{n}"), now)
            for n, s in cfg.config.sources.items()
        }
        return {
            "daemon": daemon,
            "level": doc.get("level") if running else None,
            "sources": unknown,
        }
    try:
        sources: dict[str, Any] = {}
        for name, src in cfg.config.sources.items():
            last = _newest(state, ("backup", "daemon_backup"), name, result="ok")
            when = (last.ended_at or last.started_at) if last else None
            rpo = SourceRpo(name, src.rpo, when)
            age = age_seconds(when, now)
            failed = _newest(state, ("daemon_backup",), name)
            sources[name] = {
                "last_snapshot": iso(when) if when else None,
                "age_seconds": round(age, 1) if age is not None else None,
                "rpo_seconds": src.rpo,
                "overdue": is_overdue(rpo, now),
                "last_backup_result": failed.result if failed else None,
                "last_verify": _run_json(_newest(state, ("verify", "daemon_verify"), name)),
                "last_restore_drill": _run_json(
                    _newest(state, ("restore_drill", "daemon_restore_drill"), name)
                ),
                "next_run": next_runs.get(f"backup:{name}"),
            }
    finally:
        state.close()
    return {
        "daemon": daemon,
        "level": doc.get("level") if running else None,
        "sources": sources,
    }


def _unknown(rpo: float | None, next_run: Any, now: datetime) -> dict[str, Any]:
    return {
        "last_snapshot": None,
        "age_seconds": None,
        "rpo_seconds": rpo,
        "overdue": is_overdue(SourceRpo("", rpo, None), now),
        "last_backup_result": None,
        "last_verify": None,
        "last_restore_drill": None,
        "next_run": next_run,
    }
