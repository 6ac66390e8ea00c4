"""Fleet mode against a real 3-node etcd cluster on loopback and three real daemon
processes sharing one configuration: every backup runs once per schedule slot, and a
member killed with SIGKILL has its sources taken over by the others."""

from __future__ import annotations

import json
import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import poll
from tests.integration.daemon.proc import daemon_json, events, recoveryd
from tests.integration.fleet.site import (
    LEASE,
    SLOT,
    Fleet,
    doubled,
    make_fleet_site,
    slots_of,
    snapshots,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAMES = ("a", "b", "c")  # with 4 sources, each owns one or two (the hash is fixed)


@pytest.fixture
def fleet(tmp_path: Path, etcd_cluster: EtcdCluster) -> Fleet:
    site = Fleet(tmp_path, make_fleet_site(tmp_path, etcd_cluster))
    yield site  # type: ignore[misc]
    site.stop_all()


def _everyone_sees(fleet: Fleet, names: tuple[str, ...]) -> bool:
    return all(fleet.members_seen(n) == sorted(names) for n in names)


def test_each_source_is_backed_up_once_per_slot_and_a_killed_member_is_taken_over(
    fleet: Fleet,
) -> None:
    """Three members split the sources (every member owns some); over several slots the
    store holds exactly one snapshot per source per slot, each labelled with its slot and
    the member that made it. After `kill -9` of a member that owns sources, the others take
    them over within a lease and a slot, still one snapshot per slot; the killed member,
    restarted, rejoins and runs nothing twice. A reload that changes `fleet` is refused
    (it needs a restart)."""
    for name in NAMES:
        fleet.start(name)
    assert poll(lambda: _everyone_sees(fleet, NAMES), 60), "the members did not all join"
    assert poll(lambda: all(fleet.owned(n) for n in NAMES), 30), "some member owns nothing"
    owners = {job: n for n in NAMES for job in fleet.owned(n)}
    assert sorted(owners) == [f"backup:s{i}" for i in range(4)]

    joined = datetime.now(UTC)
    assert poll(
        lambda: all(len(slots_of(snapshots(fleet.config), f"s{i}")) >= 4 for i in range(4)), 90
    ), "four slots of every source were not backed up"
    snaps = snapshots(fleet.config)
    assert doubled(snaps) == {}
    assert all(s.slot and s.member for s in snaps)
    for snap in snaps:  # the member that owns the source made it (membership was stable)
        if datetime.fromisoformat(snap.slot) > joined:
            assert owners[f"backup:{snap.source}"] == snap.member, (snap, owners)

    _visible(fleet, owners)

    victim = next(n for n in NAMES if fleet.owned(n))
    lost = [job.split(":", 1)[1] for job in fleet.owned(victim)]
    fleet.members[victim].kill()
    killed = datetime.now(UTC)
    survivors = tuple(n for n in NAMES if n != victim)
    assert poll(lambda: _everyone_sees(fleet, survivors), 60), "the survivors never saw it go"

    def taken_over() -> bool:
        snaps = snapshots(fleet.config)
        return all(
            any(s.source == src and s.member != victim and s.start > killed for s in snaps)
            for src in lost
        )

    assert poll(taken_over, 60), f"{lost} were not backed up by a survivor"
    snaps = snapshots(fleet.config)
    bound = killed + timedelta(seconds=LEASE + 2 * SLOT)  # lease + one slot (+ a refresh)
    for src in lost:
        after = [s for s in snaps if s.source == src and s.member != victim and s.start > killed]
        first = min(after, key=lambda s: s.start)
        assert datetime.fromisoformat(first.slot) <= bound
    assert any(events(fleet.state(n), "fleet_takeover") for n in survivors)
    assert doubled(snaps) == {}

    fleet.start(victim)
    assert poll(lambda: _everyone_sees(fleet, NAMES), 60), "the member did not rejoin"
    back = datetime.now(UTC)
    assert poll(
        lambda: any(s.member == victim and s.start > back for s in snapshots(fleet.config)), 60
    ), "the returning member never ran its sources again"
    assert doubled(snapshots(fleet.config)) == {}

    text = fleet.config.read_text()
    fleet.config.write_text(text.replace(f"lease: {LEASE:g}s", f"lease: {LEASE + 1:g}s"))
    fleet.members[victim].signal(signal.SIGHUP)
    assert poll(lambda: events(fleet.state(victim), "config_reload_refused"), 30)
    refused = events(fleet.state(victim), "config_reload_refused")[-1]["error"]
    assert "fleet cannot change while the daemon runs" in refused
    fleet.config.write_text(text)


def _visible(fleet: Fleet, owners: dict[str, str]) -> None:
    """`recoveryd fleet status --json` lists every member alive with the jobs it owns;
    `recoveryd status --json` of a member names it and the member of its last backup; its
    metrics count the runs of this member."""
    done = recoveryd(fleet.config, "fleet", "status", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["group"] == "test"
    assert [m["name"] for m in doc["members"]] == list(NAMES)
    assert all(m["alive"] and m["last_heartbeat"] for m in doc["members"])
    assert {job: m["name"] for m in doc["members"] for job in m["jobs"]} == owners
    text = recoveryd(fleet.config, "fleet", "status")
    assert "alive" in text.stdout and text.returncode == 0

    name = owners["backup:s0"]
    link = fleet.root / name / "recoveryd.yaml"
    status = json.loads(recoveryd(link, "status", "--json").stdout)
    assert status["daemon"]["fleet"]["member"] == name
    assert status["sources"]["s0"]["last_backup"]["member"] == name
    address = daemon_json(fleet.state(name))["metrics"]
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert f'recoveryd_fleet_runs_total{{kind="backup",member="{name}"}}' in metrics
