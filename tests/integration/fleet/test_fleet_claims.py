"""FleetMode's claims in-process, against a real 3-node etcd cluster on loopback: who may
run a job for a slot, and what happens to a running job when etcd stops answering. The
tests share one cluster, each in a group of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recoveryd.config import load_config
from recoveryd.daemon.fleetmode import FleetHooks, FleetMode
from recoveryd.daemon.fleetwiring import publish
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Alert
from recoveryd.daemon.schedule import JobSpec, plan_jobs
from recoveryd.fleet import open_coordination
from recoveryd.state import StateStore
from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import poll

pytestmark = pytest.mark.integration
SPEC = JobSpec("backup:s", "backup", "every 4s", "sources.s.schedule", source="s")
SLOT = datetime(2026, 12, 3, 8, tzinfo=UTC)


class Member:
    """One FleetMode with what it told the daemon recorded."""

    def __init__(self, name: str, cluster: EtcdCluster, tmp: Path, group: str) -> None:
        self.taken: set[datetime] = set()
        self.alerts: list[Alert] = []
        self.takeovers: list[str] = []
        (tmp / name).mkdir()
        self.state = StateStore(tmp / name)
        hooks = FleetHooks(
            specs=lambda: {SPEC.id: SPEC},
            site=lambda _spec: None,
            slot_of=lambda _spec, _at: SLOT,
            taken=lambda _spec, slot: slot in self.taken,
            takeover=lambda spec: self.takeovers.append(spec.id),
            alert=self.alerts.append,
        )
        coord = open_coordination(cluster.urls, group=group, member=name, lease=5, serves=())
        self.fleet = FleetMode(coord, hooks, lease=5, state=self.state)


def _isolated_after_refresh(member: Member) -> bool:
    """One refresh (as the daemon does every third of a lease), then: cut off?"""
    member.fleet.refresh()
    return member.fleet.view().isolated


@pytest.fixture
def pair(
    tmp_path: Path, module_etcd_cluster: EtcdCluster, fleet_group: str
) -> Iterator[tuple[Member, Member]]:
    a, b = (Member(n, module_etcd_cluster, tmp_path, fleet_group) for n in ("a", "b"))
    a.fleet.start()
    b.fleet.start()
    a.fleet.refresh()
    yield a, b
    for m in (a, b):
        m.fleet.stop()
        m.state.close()


def test_one_claim_per_job_and_slot(pair: tuple[Member, Member]) -> None:
    """Only the owner claims the job; while its claim is held, the same job and slot cannot
    be claimed again (the slot lock in etcd); once the store holds a snapshot of the slot,
    nobody claims it."""
    a, b = pair
    assert a.fleet.view().members == ("a", "b")
    owner, other = (a, b) if a.fleet.owner(SPEC) == "a" else (b, a)
    with other.fleet.claim(SPEC) as claim:
        assert claim is None
    with owner.fleet.claim(SPEC) as claim:
        assert claim is not None
        assert claim.labels()["fleet_member"] == owner.fleet.member
        with owner.fleet.claim(SPEC) as again:
            assert again is None
    owner.taken.add(SLOT)
    with owner.fleet.claim(SPEC) as claim:
        assert claim is None
    assert owner.state.events(kinds=("fleet_slot_done",))


def test_a_member_cut_off_loses_its_running_claim_and_alerts(
    pair: tuple[Member, Member], module_etcd_cluster: EtcdCluster
) -> None:
    """etcd frozen (SIGSTOP) while a job runs: once the lease is over the member is
    isolated (an event, one alert), the running job's claim is lost (its backup stops at
    the next chunk boundary, before any manifest), and no new claim is granted. When etcd
    answers again, the member rejoins and alerts the recovery."""
    a, b = pair
    owner = a if a.fleet.owner(SPEC) == "a" else b
    with owner.fleet.claim(SPEC) as claim:
        assert claim is not None
        module_etcd_cluster.pause()
        try:
            assert poll(lambda: _isolated_after_refresh(owner), 60)
            assert claim.lost.is_set()
            assert claim.cancel_event(threading.Event()).is_set()
            with owner.fleet.claim(SPEC) as refused:
                assert refused is None
        finally:
            module_etcd_cluster.resume()
    assert [al.kind for al in owner.alerts] == ["failure"]
    assert "stopped scheduling" in owner.alerts[0].subject
    assert poll(lambda: not _isolated_after_refresh(owner), 60)
    assert owner.alerts[-1].kind == "recovery"


def test_each_member_watches_the_rpo_of_the_sources_it_owns(
    tmp_path: Path, module_etcd_cluster: EtcdCluster, fleet_group: str
) -> None:
    """So that a source is reported overdue by one member, not by all: after the members
    refresh, each one's RPO metrics carry the RPO of the sources whose backup it owns and
    none for the others (their owners watch them)."""
    config = tmp_path / "recoveryd.yaml"
    sources = "".join(
        f"  s{i}: {{kind: sqlite, path: ./s.db, schedule: '0 3 * * *', rpo: 1h, "
        "targets: [local]}\n"
        for i in range(6)
    )
    config.write_text(
        f"encryption: {{key_file: {tmp_path / 'k'}}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path / 'store'}}}}}\n"
        f"sources:\n{sources}"
    )
    cfg = load_config(config)
    specs = {s.id: s for s in plan_jobs(cfg.config)}
    members = [Member(n, module_etcd_cluster, tmp_path, fleet_group) for n in ("a", "b")]
    try:
        for m in members:
            m.fleet.hooks = replace(m.fleet.hooks, specs=lambda: specs)
            m.fleet.start()
        watched: dict[str, set[str]] = {}
        for m in members:
            m.fleet.refresh()
            metrics = DaemonMetrics(lambda: datetime.now(UTC))
            publish(m.fleet, metrics, cfg)
            rpos = metrics.sources()
            assert set(rpos) == {f"s{i}" for i in range(6)}
            watched[m.fleet.member] = {n for n, s in rpos.items() if s.rpo_seconds == 3600}
            owned = {j.split(":", 1)[1] for j in m.fleet.view().owned_jobs if ":" in j}
            assert watched[m.fleet.member] == owned
        assert watched["a"] | watched["b"] == {f"s{i}" for i in range(6)}
        assert not watched["a"] & watched["b"]
    finally:
        for m in members:
            m.fleet.stop()
            m.state.close()
