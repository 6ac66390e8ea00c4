"""Fleet mode when etcd itself fails, against a real 3-node etcd cluster on loopback and
three real daemon processes: the etcd leader stopped (re-election), and the whole cluster
frozen with SIGSTOP (every member cut off)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import HttpRecorder, poll
from tests.integration.daemon.proc import events
from tests.integration.fleet.site import (
    SLOT,
    Fleet,
    doubled,
    event_times,
    make_fleet_site,
    slots_of,
    snapshots,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAMES = ("a", "b", "c")


@pytest.fixture
def fleet(tmp_path: Path, etcd_cluster: EtcdCluster, http_recorder: HttpRecorder) -> Fleet:
    notify = (
        f"notify: [{{kind: webhook, url: '{http_recorder.url}/alerts', on: [failure, recovery]}}]"
    )
    site = Fleet(tmp_path, make_fleet_site(tmp_path, etcd_cluster, extra=notify))
    for name in NAMES:
        site.start(name)
    assert poll(lambda: all(site.members_seen(n) == list(NAMES) for n in NAMES), 60)
    yield site  # type: ignore[misc]
    site.stop_all()


def _slots_after(when: datetime, count: int, config: Path) -> bool:
    snaps = snapshots(config)
    return all(len([s for s in slots_of(snaps, f"s{i}") if s > when]) >= count for i in range(4))


def test_stopping_the_etcd_leader_misses_and_doubles_no_slot(
    fleet: Fleet, etcd_cluster: EtcdCluster
) -> None:
    """The etcd leader is stopped: the other two elect a new one, the members that talked to
    the stopped node move to another URL of the list, and every source still has exactly
    one snapshot in every slot, before, during and after the election."""
    joined = datetime.now(UTC)
    assert poll(lambda: _slots_after(joined, 2, fleet.config), 60)
    leader = etcd_cluster.leader()
    etcd_cluster.stop_node(leader)
    stopped = datetime.now(UTC)
    rest = [n for n in etcd_cluster.nodes if n is not leader]
    assert poll(lambda: etcd_cluster.has_leader(rest), 30), "etcd elected no new leader"
    assert poll(lambda: _slots_after(stopped, 3, fleet.config), 90)

    snaps = snapshots(fleet.config)
    assert doubled(snaps) == {}
    for i in range(4):
        slots = [s for s in slots_of(snaps, f"s{i}") if s > joined]
        gaps = [b - a for a, b in itertools.pairwise(slots)]
        assert all(g == timedelta(seconds=SLOT) for g in gaps), (f"s{i}", slots)
    assert all(not events(fleet.state(n), "fleet_isolated") for n in NAMES)


def test_a_member_cut_off_from_etcd_stops_scheduling_after_one_lease(
    fleet: Fleet, etcd_cluster: EtcdCluster, http_recorder: HttpRecorder
) -> None:
    """With the etcd cluster frozen (SIGSTOP), no member can prove what it owns: each stops
    running jobs once its lease is over (a `fleet_isolated` event and one alert), its jobs
    are refused at their next slots (`fleet_skipped`), and no snapshot starts after that.
    When etcd answers again the members rejoin (`fleet_rejoined`, a recovery alert) and
    back up again."""
    joined = datetime.now(UTC)
    assert poll(lambda: _slots_after(joined, 1, fleet.config), 60)
    etcd_cluster.pause()
    try:
        assert poll(lambda: all(events(fleet.state(n), "fleet_isolated") for n in NAMES), 60)
        isolated = {n: event_times(fleet.state(n), "fleet_isolated")[-1] for n in NAMES}
        owners = [n for n in NAMES if fleet.owned(n)]
        assert poll(
            lambda: all(
                any(t > isolated[n] for t in event_times(fleet.state(n), "fleet_skipped"))
                for n in owners
            ),
            60,
        ), "the cut-off members' jobs did not come due"
        for snap in snapshots(fleet.config):
            assert snap.start <= isolated[snap.member], snap
        alerts = [json.loads(r.body) for r in http_recorder.received("/alerts")]
        assert any("stopped scheduling" in str(a) for a in alerts), alerts
    finally:
        etcd_cluster.resume()
    assert poll(lambda: all(events(fleet.state(n), "fleet_rejoined") for n in NAMES), 60)
    resumed = datetime.now(UTC)
    assert poll(lambda: _slots_after(resumed, 1, fleet.config), 60)
    assert doubled(snapshots(fleet.config)) == {}
