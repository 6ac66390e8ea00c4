"""The flood: the off-site store stops answering in the middle of a backup.

A real Ceph RGW or Swift store sits behind a loopback TCP proxy that is switched
to a blackhole part-way through the upload (connections accepted, nothing ever
answered, as when the network to a site is cut). The local snapshot must still
be committed, the run must say which target is missing (exit 6, `missing_targets`),
and once the store answers again the daemon copies the snapshot there, after which
both copies verify.

`make test` runs it against Ceph RGW (the store that enforces what S3 promises); the
blackhole is a TCP proxy, the same for both vendors, so Swift runs it under
`make test-faults` (RECOVERYD_FAULTS=all), with Ceph again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.e2e.conftest import Deployment, fs_target
from tests.faultmode import FULL
from tests.fixtures.blackhole import BlackholeProxy
from tests.fixtures.objectstores import S3_VENDORS, S3Server, TargetSpec
from tests.fixtures.web import HttpRecorder

pytestmark = pytest.mark.integration
VENDORS = S3_VENDORS if FULL else ("ceph",)


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[BlackholeProxy]:
    """A forwarding proxy in front of the store's plain-http endpoint."""
    port = urlsplit(s3_server.endpoint_url).port
    assert port is not None
    p = BlackholeProxy(port).start()
    yield p
    p.close()


@pytest.mark.parametrize("s3_server", VENDORS, indirect=True)
def test_a_target_lost_mid_run_degrades_the_backup_and_is_caught_up_later(
    deployment: Deployment,
    tmp_path: Path,
    s3_server: S3Server,
    target_factory: Callable[..., TargetSpec],
    proxy: BlackholeProxy,
    http_recorder: HttpRecorder,
) -> None:
    """Backup of a 12 MiB directory to [local, offsite]; offsite's endpoint blackholes after
    4 MiB: exit 6, the JSON lists the snapshot on local with offsite missing (and why), an
    under_replicated alert reaches the webhook, the snapshot lists on local only; after the
    proxy heals, `daemon --once` copies it to offsite (no new dump) and `verify --read-data`
    passes on both copies."""
    data = tmp_path / "registry-files"
    data.mkdir()
    for i in range(3):
        (data / f"part-{i}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    offsite = target_factory(s3_server.vendor).yaml()
    offsite.update(endpoint_url=proxy.url, connect_timeout="2s", read_timeout="3s", attempts=2)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "local"), "offsite": offsite},
        sources={
            "registry": {"kind": "directory", "path": str(data), "targets": ["local", "offsite"]}
        },
    )
    doc = yaml.safe_load(deployment.config.read_text())
    doc["daemon"] = {"prune_schedule": None}  # this test is about replicas, not retention
    doc["notify"] = [{"kind": "webhook", "url": f"{http_recorder.url}/alerts"}]
    deployment.config.write_text(yaml.safe_dump(doc))

    proxy.blackhole_after(4 * 1024 * 1024)
    result = deployment.cli("--json", "backup").expect(6)
    assert proxy.blackholed
    (snap,) = result.data["snapshots"]
    assert snap["targets"] == ["local"]
    (missing,) = snap["missing_targets"]
    assert missing["target"] == "offsite" and "offsite" in missing["error"]
    (alert,) = [r.json() for r in http_recorder.requests]
    assert alert["event"] == "under_replicated" and "offsite" in alert["subject"]
    (listed,) = deployment.snapshots("--target", "local")
    assert listed["id"] == snap["id"]

    proxy.heal()
    deployment.cli("daemon", "--once").expect(0)
    (both,) = deployment.snapshots()
    assert both["id"] == snap["id"]
    assert sorted(both["targets"]) == ["local", "offsite"]
    deployment.cli("verify", "--read-data").expect(0)
    assert deployment.snapshots()[0]["verified_by_target"] == {"local": "ok", "offsite": "ok"}
    status = deployment.cli("--json", "status").expect(0).data["sources"]["registry"]
    assert status["targets"]["offsite"]["last_snapshot"] is not None
