"""SSH dropped mid-stream: a directory backed up over SSH (`via_ssh`) through a loopback
TCP relay (tests/faults/proxy.py, TcpCutter) in front of the real sshd, which drops
the connection after a seeded number of bytes (reset or orderly close).

What must hold: the backup stops with an error naming the source, commits nothing,
and does not hang; the next backup over a working connection succeeds and restores
the same files.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from recoveryd.errors import RecoverydError
from recoveryd.remote import ssh_runner
from recoveryd.repo import Repository, SnapshotMeta, write_snapshot
from recoveryd.sources.base import SourceInfo
from recoveryd.sources.directory import DirectorySource
from recoveryd.sources.local import LocalRunner
from recoveryd.stores.filesystem import FilesystemStore
from tests.faults.conftest import Tally, points
from tests.faults.proxy import TcpCutter
from tests.fixtures.sshd import SshServer
from tests.unit.repo.helpers import SMALL, master

pytestmark = pytest.mark.integration

DATA = 6 * 1024 * 1024


def _known_hosts(server: SshServer, port: int, directory: Path) -> Path:
    """The server's host key, recorded for the relay's port as well."""
    key = server.host_key_pub.read_text().split()
    path = directory / "known_hosts"
    path.write_text(f"[127.0.0.1]:{port} {key[0]} {key[1]}\n")
    return path


def _backup(
    server: SshServer, port: int, tmp: Path, src: Path, repo: Repository
) -> tuple[str, SourceInfo]:
    host = server.host("root", port=port, known_hosts=str(_known_hosts(server, port, tmp)))
    runner = ssh_runner(host, base_dir=tmp)
    try:
        reader = DirectorySource("tiles", str(src), runner=runner).snapshot()
        (info,) = write_snapshot(reader, [repo], SnapshotMeta(source="tiles"))
        return info.id, reader.info
    finally:
        runner.close()


@pytest.mark.parametrize("seed", range(points(20, 3)))
def test_ssh_dropped_mid_stream_fails_clearly_and_commits_nothing(
    sshd_server: SshServer, tmp_path: Path, seed: int, campaign: Tally
) -> None:
    """The SSH connection dropped after a seeded number of bytes: the backup fails with
    one line naming the source, nothing is listed; the next backup works and restores."""
    rng = random.Random(seed)
    src = tmp_path / "tiles"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.bin").write_bytes(rng.randbytes(DATA // 3))
    repo = Repository.init(
        FilesystemStore(tmp_path / "store", "local"), master(), chunker_params=SMALL
    )
    cutter = TcpCutter(sshd_server.port, rng.randrange(4096, DATA), reset=rng.random() < 0.5)
    try:
        with pytest.raises(RecoverydError) as info:
            _backup(sshd_server, cutter.port, tmp_path, src, repo)
    finally:
        cutter.close()
    campaign.add("fault:ssh_drop")
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert "tiles" in message or "127.0.0.1" in message, message
    assert repo.snapshot_ids() == []
    sid, source_info = _backup(sshd_server, sshd_server.port, tmp_path, src, repo)
    out = tmp_path / "restored"
    with repo.restore_stream(sid) as stream:
        DirectorySource("tiles", str(out), runner=LocalRunner()).restore(
            stream, str(out), source_info
        )
    for f in src.iterdir():
        assert (out / f.name).read_bytes() == f.read_bytes()
