"""The record of a job's run in its slot, against a real 3-node etcd cluster on loopback:
once a member ran a job (any kind) in a slot, no member runs it again there, even when
ownership moves in the middle of the slot (a member joins, or the owner goes away after
its run and released the slot's lock). The tests share one cluster, each in a group of its
own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recoveryd.daemon.fleetmode import FleetHooks, FleetMode
from recoveryd.daemon.schedule import JobSpec
from recoveryd.fleet import Member as Live
from recoveryd.fleet import Partition, job_key, open_coordination
from recoveryd.state import StateStore
from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import poll

pytestmark = pytest.mark.integration
SLOT = datetime(2026, 12, 3, 8, tzinfo=UTC)
PRUNE = JobSpec("prune", "prune", "every 4s", "daemon.prune_schedule")
JOINER = "b"  # the member that joins owns PRUNE and the VERIFY below once it is there


def _moved_source() -> str:
    """A source whose jobs move from `a` to `b` when `b` joins `a`."""
    both = Partition([Live("a"), Live(JOINER)])
    return next(f"s{i}" for i in range(100) if both.owner(job_key("", f"s{i}"), None) == JOINER)


VERIFY = JobSpec("verify:x", "verify", "every 4s", "sources.x.verify.schedule",
                 source=_moved_source())  # fmt: skip
BACKUP = JobSpec("backup:x", "backup", "every 4s", "sources.x.schedule", source=VERIFY.source)


class Node:
    """One member's FleetMode, as the daemon wires it (the slot fixed; the store's backup
    check and the catch-up rule under the test's control)."""

    def __init__(self, name: str, cluster: EtcdCluster, tmp: Path, group: str) -> None:
        self.overdue = False
        (tmp / name).mkdir()
        self.state = StateStore(tmp / name)
        hooks = FleetHooks(
            specs=lambda: {s.id: s for s in (PRUNE, VERIFY, BACKUP)},
            site=lambda _spec: None,
            slot_of=lambda _spec, _at: SLOT,
            taken=lambda _spec, _slot: False,
            takeover=lambda _spec: None,
            alert=lambda _alert: None,
            slot_length=lambda _spec, _slot: 4.0,
            overdue=lambda _spec: self.overdue,
        )
        coord = open_coordination(cluster.urls, group=group, member=name, lease=5, serves=())
        self.fleet = FleetMode(coord, hooks, lease=5, state=self.state)

    def run(self, spec: JobSpec, result: str) -> bool:
        """Claim `spec` for the slot and, when granted, end its run with `result` (as the
        job runner does); whether it ran."""
        with self.fleet.claim(spec) as claim:
            if claim is None:
                return False
            self.fleet.finished(spec, claim, result)
            return True

    def sees(self, *names: str) -> bool:
        self.fleet.refresh()
        return self.fleet.view().members == names

    def close(self) -> None:
        self.fleet.stop()
        self.state.close()


class Site:
    """The members started so far in one group."""

    def __init__(self, cluster: EtcdCluster, tmp: Path, group: str) -> None:
        self.cluster, self.tmp, self.group = cluster, tmp, group
        self.nodes: dict[str, Node] = {}

    def add(self, name: str) -> Node:
        node = self.nodes[name] = Node(name, self.cluster, self.tmp, group=self.group)
        node.fleet.start()
        return node

    def join(self) -> Node:
        """`b` joins `a`; both see it."""
        joiner = self.add(JOINER)
        assert poll(lambda: self.nodes["a"].sees("a", JOINER) and joiner.sees("a", JOINER), 30)
        return joiner


@pytest.fixture
def site(tmp_path: Path, module_etcd_cluster: EtcdCluster, fleet_group: str) -> Iterator[Site]:
    made = Site(module_etcd_cluster, tmp_path, fleet_group)
    made.add("a")
    yield made
    for node in made.nodes.values():
        node.close()


@pytest.mark.parametrize("spec", [VERIFY, PRUNE], ids=["verify", "prune"])
def test_a_job_run_in_its_slot_does_not_run_again_when_a_member_joins(
    site: Site, spec: JobSpec
) -> None:
    """`a` alone runs the job in the slot (and releases the slot's lock); `b` joins and
    now owns the job, but its claim for the same slot is refused: the slot record says
    `a` ran it (a `fleet_slot_done` event names `a`). A failed run closes the slot too."""
    a = site.nodes["a"]
    assert a.fleet.owner(spec) == "a"
    assert a.run(spec, "failed" if spec is PRUNE else "ok")
    b = site.join()
    assert b.fleet.owner(spec) == JOINER
    assert not b.run(spec, "ok")
    done = b.state.events(kinds=("fleet_slot_done",))
    assert [e.data["member"] for e in done] == ["a"]


def test_a_job_run_in_its_slot_does_not_run_again_after_its_owner_leaves(
    site: Site,
) -> None:
    """The owner runs the job, then goes away (its member key gone, its lock released):
    the survivor owns the job now and does not run it again in that slot; a run that
    was deferred or aborted, though, leaves its slot open for the new owner."""
    a = site.nodes["a"]
    b = site.join()
    assert b.fleet.owner(VERIFY) == JOINER and a.fleet.owner(BACKUP) == JOINER
    assert b.run(VERIFY, "ok")
    assert b.run(BACKUP, "aborted")  # a shutdown or a lost claim: the run did not happen
    b.fleet.stop()
    assert poll(lambda: a.sees("a"), 30)
    assert a.fleet.owner(VERIFY) == "a"
    assert not a.run(VERIFY, "ok")
    assert a.run(BACKUP, "ok")


def test_a_failed_backup_runs_once_more_in_its_slot_only_by_the_catch_up_rule(
    site: Site,
) -> None:
    """A backup that failed in its slot is not retried there by the member that takes it
    over, unless its source is past its RPO (the catch-up rule): then it runs once more,
    and only once, whatever that run's result."""
    a = site.nodes["a"]
    assert a.run(BACKUP, "failed")
    b = site.join()
    assert not b.run(BACKUP, "ok")
    b.overdue = True
    assert b.run(BACKUP, "failed")
    assert not b.run(BACKUP, "ok"), "the catch-up rule gives one more run, not more"
