"""`recoveryd fleet status` against a real 3-node etcd cluster on loopback: a member is
alive while its key lives on its etcd lease, whatever the clocks of the hosts say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recoveryd.fleet.tooz_etcd import ToozCoordination
from tests.fixtures.etcd import EtcdCluster
from tests.integration.daemon.proc import recoveryd

pytestmark = pytest.mark.integration


def test_a_member_whose_clock_is_behind_is_alive_while_its_lease_lives(
    tmp_path: Path, etcd_cluster: EtcdCluster
) -> None:
    """A member whose host clock is an hour behind publishes heartbeats an hour old; its
    key still lives on its lease in etcd, so `fleet status --json` lists it alive (with
    the heartbeat time its own clock gave). Once it leaves, it is no longer listed."""
    config = tmp_path / "recoveryd.yaml"
    config.write_text(
        f"encryption: {{key_file: {tmp_path / 'k'}}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path / 'store'}}}}}\n"
        f"fleet: {{coordination: [{', '.join(etcd_cluster.urls)}], group: clocks, lease: 5s}}\n"
    )
    behind = datetime.now(UTC) - timedelta(hours=1)
    member = ToozCoordination(
        etcd_cluster.urls, group="clocks", member="late", lease=60, serves=(),
        clock=lambda: behind,
    )  # fmt: skip
    member.join()
    try:
        done = recoveryd(config, "fleet", "status", "--json")
        assert done.returncode == 0, done.stderr
        (listed,) = json.loads(done.stdout)["members"]
        assert listed["name"] == "late"
        assert listed["alive"] is True
        assert listed["last_heartbeat"] == behind.isoformat()
    finally:
        member.leave()
    done = recoveryd(config, "fleet", "status", "--json")
    assert json.loads(done.stdout)["members"] == []
