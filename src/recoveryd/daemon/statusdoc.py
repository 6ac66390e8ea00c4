"""The daemon's own status document (`daemon.json`) and its systemd STATUS line, built
from the parts of a running daemon; `recoveryd status` reads the document back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from recoveryd.state import iso


@dataclass(frozen=True)
class DaemonSnapshot:
    """What the daemon is doing at one moment."""

    state: str  # starting, running, stopping, stopped
    started: datetime
    now: datetime
    config: str
    running: Mapping[str, datetime]  # job id -> since
    level: str  # the load governor's level
    next_runs: Mapping[str, datetime | None]
    metrics: str | None  # the metrics endpoint's address
    jobs: int  # how many jobs are scheduled


def status_document(snap: DaemonSnapshot) -> dict[str, object]:
    """`daemon.json` without its optional parts (`governor`, `fleet`)."""
    return {
        "pid": os.getpid(),
        "state": snap.state,
        "started": iso(snap.started),
        "updated": iso(snap.now),
        "config": snap.config,
        "activity": [
            {"job": job, "since": iso(since)} for job, since in sorted(snap.running.items())
        ],
        "level": snap.level,
        "next_runs": {
            job: iso(when) if when else None for job, when in sorted(snap.next_runs.items())
        },
        "metrics": snap.metrics,
    }


def status_line(snap: DaemonSnapshot) -> str:
    """The systemd STATUS= line: what runs, the load level, how many jobs are scheduled."""
    running = sorted(snap.running)
    doing = f"running {', '.join(running)}" if running else "idle"
    return f"{doing}; level {snap.level}; {snap.jobs} jobs scheduled"
