"""Fencing, in-process against a real 3-node etcd cluster on loopback: a member cut off from
etcd (a real TCP proxy between it and each etcd node, switched to a blackhole) stops its
running job before etcd can let its lease, and so its slot lock, go."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recoveryd.daemon.fleetmode import FleetHooks, FleetMode
from recoveryd.daemon.notify import Alert
from recoveryd.daemon.schedule import JobSpec
from recoveryd.fleet import open_coordination
from recoveryd.state import StateStore
from tests.fixtures.blackhole import BlackholeProxy
from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import poll

pytestmark = pytest.mark.integration
SPEC = JobSpec("backup:s", "backup", "every 4s", "sources.s.schedule", source="s")
SLOT = datetime(2026, 12, 3, 8, tzinfo=UTC)
LEASE = 9.0  # a margin of 3 s: room for a loaded test machine
GROUP = "fence"


class Member:
    """One FleetMode, refreshing and fencing in the background as in the daemon."""

    def __init__(self, name: str, urls: list[str], tmp: Path) -> None:
        self.alerts: list[Alert] = []
        self.fenced: list[int] = []
        (tmp / name).mkdir()
        self.state = StateStore(tmp / name)
        hooks = FleetHooks(
            specs=lambda: {SPEC.id: SPEC},
            site=lambda _spec: None,
            slot_of=lambda _spec, _at: SLOT,
            taken=lambda _spec, _slot: False,
            takeover=lambda _spec: None,
            alert=self.alerts.append,
            fenced=self.fenced.append,
        )
        coord = open_coordination(urls, group=GROUP, member=name, lease=LEASE, serves=())
        self.fleet = FleetMode(coord, hooks, lease=LEASE, state=self.state)

    def close(self) -> None:
        self.fleet.stop()
        self.state.close()


def test_a_cut_off_member_stops_its_job_before_its_slot_lock_can_be_taken(
    tmp_path: Path, etcd_cluster: EtcdCluster, proxies: list[BlackholeProxy]
) -> None:
    """Member `cut` reaches etcd through proxies, member `peer` directly. `cut` claims the
    job (it is the only member), then its proxies become blackholes. `cut` fences itself:
    the claim is lost (the backup's cancellation), a `fleet_isolated` event names the
    stopped job, the fenced-jobs hook counts it, and it refuses new claims. At the moment
    the claim is lost, the slot lock is still held in etcd (`peer` cannot take it): the
    stop came before etcd let the lease go. Later the lease runs out and `peer` takes the
    lock."""
    cut = Member("cut", [f"etcd3+http://127.0.0.1:{p.port}" for p in proxies], tmp_path)
    peer = Member("peer", etcd_cluster.urls, tmp_path)
    try:
        cut.fleet.start()
        cut.fleet.keep()
        with cut.fleet.claim(SPEC) as claim:
            assert claim is not None
            for proxy in proxies:
                proxy.blackhole()
            assert claim.lost.wait(60), "the cut-off member never stopped its job"
            lock = peer.fleet.coord.lock(f"{SPEC.id}@{claim.slot_text}")
            assert not lock.acquire(), "the slot lock was free before the job was stopped"
            with cut.fleet.claim(SPEC) as refused:
                assert refused is None
        isolated = cut.state.events(kinds=("fleet_isolated",))
        assert [e.data["stopped"] for e in isolated] == [[SPEC.id]]
        assert cut.fenced == [1]
        assert [a.kind for a in cut.alerts] == ["failure"]
        assert poll(lock.acquire, 30), "the cut-off member's lease never ran out"
        lock.release()
    finally:
        for proxy in proxies:
            proxy.heal()
        cut.close()
        peer.close()
