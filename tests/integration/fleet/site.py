"""A fleet test site: SQLite sources into one filesystem store, one configuration file,
three daemon processes with their own state directories, a real etcd cluster."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recoveryd.app import wiring
from recoveryd.config import load_config
from tests.fixtures.etcd import EtcdCluster
from tests.initrepo import init_repositories
from tests.integration.daemon.proc import DaemonProcess, daemon_json, events, recoveryd

SLOT = 4.0  # seconds: short schedule slots (`every 4s`)
LEASE = 5.0  # the shortest lease the configuration accepts
GROUP = "test"


@dataclass(frozen=True)
class Snap:
    """One snapshot in the store, as its manifest records it."""

    id: str
    source: str
    slot: str
    member: str
    start: datetime


def make_fleet_site(
    root: Path, cluster: EtcdCluster, sources: int = 4, extra: str = "", prune: str | None = None
) -> Path:
    """The one configuration every member reads (state_dir relative: each member reads it
    through a link in its own directory, so each has its own state directory). With a
    `prune` schedule, the sources have no backup schedule and keep their newest snapshot."""
    urls = ", ".join(cluster.urls)
    lines = [
        "state_dir: state",
        f"encryption: {{key_file: {root / 'master.key'}}}",
        f"targets: {{local: {{kind: filesystem, path: {root / 'store'}}}}}",
        "sources:",
    ]
    for i in range(sources):
        db = root / f"db{i}.sqlite"
        with sqlite3.connect(db) as conn:
            conn.execute("create table if not exists t(id integer primary key, v text)")
            conn.executemany("insert into t(v) values (?)", [(f"v{n}",) for n in range(50)])
        when = "retention: {keep_last: 1}" if prune else f"schedule: 'every {SLOT:g}s'"
        lines.append(f"  s{i}: {{kind: sqlite, path: {db}, {when}, targets: [local]}}")
    pruning = f"'{prune}'" if prune else "null"
    lines += [
        f"daemon: {{prune_schedule: {pruning}, replicate_schedule: null, shutdown_grace: 5s}}",
        "metrics: {listen: '127.0.0.1:0'}",
        f"fleet: {{coordination: [{urls}], group: {GROUP}, lease: {LEASE:g}s}}",
        extra,
    ]
    config = root / "recoveryd.yaml"
    config.write_text("\n".join(lines) + "\n")
    assert recoveryd(config, "key", "generate").returncode == 0
    init_repositories(config)
    return config


@dataclass
class Fleet:
    """The members of one configuration, each a daemon process with its own directory."""

    root: Path
    config: Path
    members: dict[str, DaemonProcess] = field(default_factory=dict)

    def start(self, name: str) -> DaemonProcess:
        home = self.root / name
        home.mkdir(exist_ok=True)
        link = home / "recoveryd.yaml"
        if not link.exists():
            link.symlink_to(self.config)
        proc = DaemonProcess(link, home / "state", args=("--member", name)).start()
        self.members[name] = proc
        return proc

    def state(self, name: str) -> Path:
        return self.root / name / "state"

    def members_seen(self, name: str) -> list[str]:
        """The member list `name` last recorded."""
        try:
            seen = events(self.state(name), "fleet_members")
        except sqlite3.Error:  # the daemon has not created its state yet
            return []
        return list(seen[-1]["members"]) if seen else []

    def owned(self, name: str) -> list[str]:
        fleet = daemon_json(self.state(name)).get("fleet") or {}
        return list(fleet.get("owned_jobs") or [])

    def stop_all(self) -> None:
        for proc in self.members.values():
            if proc.proc.poll() is None:
                proc.stop(timeout=30)


def snapshots(config: Path) -> list[Snap]:
    """Every snapshot in the store with the slot and member its manifest records."""
    cfg = load_config(config)
    repo = wiring.open_repository(cfg, "local")
    try:
        out = []
        for sid in repo.snapshot_ids():
            m = repo.manifest(sid)
            out.append(
                Snap(sid, m.source, m.extra.get("fleet_slot", ""), m.extra.get("fleet_member", ""),
                     m.start_time)
            )  # fmt: skip
        return out
    finally:
        repo.store.close()


def doubled(snaps: list[Snap]) -> dict[tuple[str, str], int]:
    """(source, slot) pairs held by more than one snapshot."""
    counts = Counter((s.source, s.slot) for s in snaps)
    return {k: n for k, n in counts.items() if n > 1}


def event_times(state_dir: Path, kind: str) -> list[datetime]:
    """When the daemon recorded each event of `kind`."""
    db = sqlite3.connect(state_dir / "state.db")
    try:
        rows = db.execute("select time from events where kind=? order by id", (kind,))
        return [datetime.fromisoformat(r[0].replace("Z", "+00:00")) for r in rows]
    finally:
        db.close()


PruneRun = tuple[datetime, datetime, str, str]


def prune_runs(state_dir: Path) -> list[PruneRun]:
    """(start, end, result, slot) of the prune runs a member ended, oldest first."""
    db = sqlite3.connect(state_dir / "state.db")
    try:
        rows = db.execute(
            "select started_at, ended_at, result, details from runs "
            "where kind='daemon_prune' and ended_at is not null order by id"
        ).fetchall()
    finally:
        db.close()

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return [
        (when(a), when(b), result, str(json.loads(details or "{}").get("fleet_slot", "")))
        for a, b, result, details in rows
    ]


def slots_of(snaps: list[Snap], source: str) -> list[datetime]:
    return sorted(datetime.fromisoformat(s.slot) for s in snaps if s.source == source)
