"""`recoveryd status [--json]`: the daemon, the load level, each source against its RPO.

Reads local state (daemon.json, the daemon lock, the state store), so it answers
at once even when a store is unreachable; only for a source the state store knows
no snapshot of (a lost state directory) are the stores listed.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.config import LoadedConfig
from recoveryd.daemon.status import build_status
from recoveryd.errors import RecoverydError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="daemon state, pressure level, per source: last snapshot, age vs RPO"
    )
    p.set_defaults(func=run)


def store_listing(cfg: LoadedConfig) -> dict[str, dict[str, datetime]]:
    """Source -> target -> newest snapshot there, from the stores that can be listed."""
    from recoveryd import app

    out: dict[str, dict[str, datetime]] = {}
    try:
        snaps = app.list_snapshots(cfg, on_error=lambda _target, _exc: None)
    except RecoverydError:  # status answers anyway; `snapshots` names the problem
        return out
    for snap in snaps:
        for t in snap.targets:
            seen = out.setdefault(snap.source, {}).get(t)
            if seen is None or snap.time > seen:
                out[snap.source][t] = snap.time
    return out


def human_age(seconds: float | None) -> str:
    """`3h12m`, `45s`, `2d4h`: an age as an operator reads it."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    now = datetime.now(UTC)
    state_dir = cfg.resolve_path(cfg.config.state_dir)
    doc = build_status(cfg, state_dir, now, lambda: store_listing(cfg))
    pitr = _recoverable_windows(cfg, now, doc["sources"])
    if ctx.json:
        output.emit_json(doc)
        return 0
    d = doc["daemon"]
    if d["running"]:
        activity = ", ".join(a["job"] for a in d.get("activity") or []) or "idle"
        output.line(f"daemon: running (pid {d['pid']}, since {d.get('started')}); {activity}")
        output.line(f"level: {doc['level'] or 'normal'}")
        governor = d.get("governor") or {}
        if governor.get("reasons"):
            output.line(f"  because: {'; '.join(governor['reasons'])}")
        for held in governor.get("held_back") or []:
            output.line(f"  held back: {held}")
        _fleet_line(d.get("fleet"))
    else:
        seen = f"; last seen {d['last_seen']}" if d.get("last_seen") else ""
        output.line(f"daemon: not running{seen}")
    rows = []
    for name, s in doc["sources"].items():
        rpo = human_age(s["rpo_seconds"]) if s["rpo_seconds"] is not None else "-"
        state = "OVERDUE" if s["overdue"] else "OK"
        verify = s["last_verify"]
        drill = s["last_restore_drill"]
        rows.append(
            (
                name,
                s["last_snapshot"] or "never",
                human_age(s["age_seconds"]),
                rpo,
                state,
                f"{verify['result']} {verify['time']}" if verify else "-",
                f"{drill['result']} {drill['time']}" if drill else "-",
                s.get("next_run") or "-",
            )
        )
    if rows:
        output.line()
        headers = ["source", "last snapshot", "age", "rpo", "state", "last verify"]
        output.table([*headers, "restore drill", "next run"], rows)
    for name, window in pitr.items():
        span = window["recoverable"]
        lag = window.get("archive_lag_s")
        output.line(
            f"{name}: recoverable to any moment from {span['from'] or '-'} to {span['to'] or '-'}"
            f" (archive lag {'-' if lag is None else human_age(float(lag))})"
            if "error" not in window
            else f"{name}: recoverable window unknown: {window['error']}"
        )
    return 0


def _fleet_line(fleet: dict[str, Any] | None) -> None:
    """Fleet mode: this member, its group, the members it sees, what it owns."""
    if not fleet:
        return
    cut = "; CUT OFF from the coordination service" if fleet.get("isolated") else ""
    output.line(
        f"fleet: member {fleet['member']} of {fleet['group']} "
        f"({', '.join(fleet.get('members') or []) or 'no members seen'}); "
        f"owns {len(fleet.get('owned_jobs') or [])} jobs{cut}"
    )


def _recoverable_windows(
    cfg: LoadedConfig, now: datetime, sources: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The point-in-time window of each such source, from its targets (added to the
    source's status entry); an unreachable store is named, not fatal."""
    from recoveryd.app.walcheck import pitr_sources, recoverable

    out: dict[str, dict[str, Any]] = {}
    for name in pitr_sources(cfg):
        try:
            out[name] = recoverable(cfg, name, now)
        except RecoverydError as exc:
            out[name] = {"recoverable": {"from": None, "to": None}, "error": exc.message}
        sources.setdefault(name, {}).update(out[name])
    return out
