"""The prune in fleet mode, against a real 3-node etcd cluster on loopback and three real
daemon processes sharing one configuration and one filesystem store: one member prunes,
once per slot, one prune at a time, and each run is recorded in etcd for its slot."""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.etcd import EtcdCluster
from tests.fixtures.web import poll
from tests.integration.daemon.proc import recoveryd
from tests.integration.fleet.site import (
    GROUP,
    Fleet,
    PruneRun,
    make_fleet_site,
    prune_runs,
    snapshots,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAMES = ("a", "b", "c")
SOURCES = 2


@pytest.fixture
def fleet(tmp_path: Path, etcd_cluster: EtcdCluster) -> Iterator[Fleet]:
    config = make_fleet_site(tmp_path, etcd_cluster, sources=SOURCES, prune="every 4s")
    for _ in range(2):  # two snapshots per source: the first prune deletes the older
        for i in range(SOURCES):
            done = recoveryd(config, "backup", f"s{i}")
            assert done.returncode == 0, done.stderr
    site = Fleet(tmp_path, config)
    yield site
    site.stop_all()


def _runs(fleet: Fleet) -> dict[str, list[PruneRun]]:
    return {n: prune_runs(fleet.state(n)) if fleet.state(n).exists() else [] for n in NAMES}


def _record(cluster: EtcdCluster, slot: str) -> dict[str, object] | None:
    """The slot record of the prune in `slot`, read from etcd's own HTTP gateway."""
    key = base64.b64encode(f"recoveryd/{GROUP}/done/prune@{slot}".encode()).decode()
    found = cluster.nodes[0].post("/v3/kv/range", {"key": key})
    kvs = found.get("kvs")
    if not isinstance(kvs, list) or not kvs:
        return None
    doc: dict[str, object] = json.loads(base64.b64decode(kvs[0]["value"]))
    return doc


def test_one_member_prunes_once_per_slot_one_prune_at_a_time(
    fleet: Fleet, etcd_cluster: EtcdCluster
) -> None:
    """Three members, one prune schedule: over three slots the prune runs in each slot on
    exactly one member, never two at once (each holds the repository's exclusive lock, so
    none is refused or deferred), and each run's result is recorded in etcd under
    `prune@<slot>` with the member that ran it. Once all three see each other, only the
    member that owns the prune runs it (before that, a member that started alone owns
    everything, and may prune once in a slot of its own). The store keeps the newest
    snapshot of every source."""
    for name in NAMES:
        fleet.start(name)
    assert poll(lambda: all(fleet.members_seen(n) == list(NAMES) for n in NAMES), 60)
    settled = datetime.now(UTC)

    def since_settled() -> dict[str, list[PruneRun]]:
        return {n: [r for r in runs if r[0] >= settled] for n, runs in _runs(fleet).items()}

    assert poll(lambda: sum(len(r) for r in since_settled().values()) >= 3, 60), "no prunes"
    owners = [n for n in NAMES if "prune" in fleet.owned(n)]
    assert len(owners) == 1
    assert {n for n, r in since_settled().items() if r} == set(owners)
    every = sorted(run for r in _runs(fleet).values() for run in r)
    assert all(result == "ok" for _, _, result, _ in every), every
    assert all(n == 1 for n in Counter(slot for *_, slot in every).values()), every
    for before, after in itertools.pairwise(every):
        assert before[1] <= after[0], (before, after)  # one prune at a time
    # the member writes the slot record in etcd just after its own run record
    assert poll(lambda: _record(etcd_cluster, every[-1][3]) is not None, 30)
    record = _record(etcd_cluster, every[-1][3])
    assert record is not None
    assert (record["result"], record["member"]) == ("ok", owners[0])
    assert sorted(s.source for s in snapshots(fleet.config)) == [f"s{i}" for i in range(SOURCES)]
