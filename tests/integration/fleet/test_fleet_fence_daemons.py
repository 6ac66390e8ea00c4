"""Fencing with two real daemon processes and a real 3-node etcd cluster on loopback: the
member that runs a backup is cut off from etcd (a real TCP proxy between it and each etcd
node, switched to a blackhole) while the backup uploads; it stops that backup, committing
nothing, before the other member starts its run of the same slot."""

from __future__ import annotations

import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recoveryd.app import wiring
from recoveryd.config import load_config
from recoveryd.daemon.fleetmode import slot_text
from recoveryd.fleet import Member, Partition
from recoveryd.repo.repository import Repository
from tests.fixtures.blackhole import BlackholeProxy
from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import poll
from tests.integration.daemon.proc import daemon_json, events, recoveryd
from tests.integration.fleet.site import Fleet, doubled, snapshots
from tests.unit.repo.helpers import SMALL, TINY_PACKS

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAMES = ("a", "b")
JOB = "backup:big"


def _config(root: Path, urls: list[str], schedule: str) -> str:
    """A member's configuration: one SQLite source, a store written at 48 KiB/s one pack at
    a time (so a backup is still uploading when the member is cut off)."""
    store = (
        f"{{kind: filesystem, path: {root / 'store'}, max_bandwidth: 48KiB/s, "
        "upload_concurrency: 1}"
    )
    return "\n".join([
        "state_dir: state",
        f"encryption: {{key_file: {root / 'master.key'}}}",
        f"targets: {{local: {store}}}",
        f"sources: {{big: {{kind: sqlite, path: {root / 'big.sqlite'}, schedule: '{schedule}', "
        "targets: [local]}}",
        "daemon: {prune_schedule: null, replicate_schedule: null, shutdown_grace: 5s, "
        "timezone: UTC}",
        f"fleet: {{coordination: [{', '.join(urls)}], group: fence, lease: 9s}}",  # a margin of 3 s
    ]) + "\n"  # fmt: skip


def _runs(state_dir: Path) -> list[tuple[datetime, datetime | None, str]]:
    """(start, end, result) of the member's backup runs, oldest first."""
    db = sqlite3.connect(state_dir / "state.db")
    try:
        rows = db.execute(
            "select started_at, ended_at, result from runs where kind='daemon_backup' "
            "and result != 'running' order by id"
        ).fetchall()
    finally:
        db.close()

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return [(when(a), when(b) if b else None, r) for a, b, r in rows]


def _running(state_dir: Path) -> bool:
    return any(a["job"] == JOB for a in daemon_json(state_dir).get("activity", []))


def _packs(store: Path) -> bool:
    """The store holds a pack: a backup is uploading."""
    return any(p.is_file() for p in (store / "packs").rglob("*"))


def test_a_cut_off_member_stops_its_backup_before_another_runs_the_slot(
    tmp_path: Path, etcd_cluster: EtcdCluster, proxies: list[BlackholeProxy]
) -> None:
    """The owner of the source reaches etcd through proxies; both members are up when the
    schedule fires. While the owner's backup uploads, its proxies become blackholes. The
    owner fences itself: its run ends `aborted` with a `fleet_isolated` event naming the
    job, and it ended before the other member's run of the same slot started (the run
    records of both, compared); the store holds one snapshot of that slot, by the other
    member, and none by the owner."""
    with sqlite3.connect(tmp_path / "big.sqlite") as conn:
        conn.execute("create table blob(id integer primary key, data blob)")
        blobs = [(os.urandom(1 << 16),) for _ in range(12)]  # 768 KiB: 16 s at 48 KiB/s
        conn.executemany("insert into blob(data) values (?)", blobs)
    cut = Partition([Member(n) for n in NAMES]).owner("source:big", None)
    assert cut is not None
    other = next(n for n in NAMES if n != cut)
    urls = {cut: [f"etcd3+http://127.0.0.1:{p.port}" for p in proxies], other: etcd_cluster.urls}
    configs = {n: tmp_path / n / "recoveryd.yaml" for n in NAMES}
    for name, path in configs.items():
        path.parent.mkdir()
        path.write_text(_config(tmp_path, urls[name], "0 0 3 1 1 *"))
    assert recoveryd(configs[cut], "key", "generate").returncode == 0
    cfg = load_config(configs[cut])
    store = wiring.open_store(cfg, "local")
    Repository.init(store, wiring.master_key(cfg), name="local", chunker_params=SMALL,
                    pack_size=TINY_PACKS, concurrency=1)  # fmt: skip
    store.close()

    fleet = Fleet(tmp_path, configs[cut])
    try:
        procs = {n: fleet.start(n) for n in NAMES}  # each reads its own recoveryd.yaml
        assert poll(lambda: all(fleet.members_seen(n) == list(NAMES) for n in NAMES), 60)
        fire = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
        for name in NAMES:  # both members are up: the backup is due in a few seconds
            schedule = fire.strftime("%S %M %H * * *")
            configs[name].write_text(_config(tmp_path, urls[name], schedule))
            procs[name].signal(signal.SIGHUP)
            procs[name].wait_logged("config_reloaded")
        uploading = lambda: _running(fleet.state(cut)) and _packs(tmp_path / "store")  # noqa: E731
        assert poll(uploading, 60), "the owner's backup did not start uploading"
        for proxy in proxies:
            proxy.blackhole()
        assert poll(lambda: any(r[2] == "ok" for r in _runs(fleet.state(other))), 180)

        (cut_run,) = _runs(fleet.state(cut))
        (other_run,) = _runs(fleet.state(other))
        assert cut_run[2] == "aborted"
        assert cut_run[1] is not None and cut_run[1] < other_run[0], (cut_run, other_run)
        assert [e["stopped"] for e in events(fleet.state(cut), "fleet_isolated")] == [[JOB]]
        snaps = [s for s in snapshots(configs[other]) if s.source == "big"]
        assert [(s.slot, s.member) for s in snaps] == [(slot_text(fire), other)]
        assert doubled(snaps) == {}
    finally:
        for proxy in proxies:
            proxy.heal()
        fleet.stop_all()
