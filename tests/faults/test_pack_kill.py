"""kill -9 at any step of prune's repack leaves every committed snapshot readable.

A child process runs prune on a real filesystem repository through a wrapper store that
kills its own process (SIGKILL, no cleanup) just before the N-th write or delete of one
kind of object: a new pack, the new index, an old index, an old pack. The wrapper is a
test device around the real store; nothing else is simulated.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recoveryd.repo import Repository, SnapshotMeta, generate_master_key, write_snapshot
from recoveryd.repo.keys import load_master_key
from recoveryd.stores.filesystem import FilesystemStore
from tests.unit.repo.helpers import SMALL, TINY_PACKS, BytesReader, text_data

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from recoveryd.repo import Repository
    from recoveryd.repo.keys import load_master_key
    from recoveryd.stores.filesystem import FilesystemStore

    root, key, verb, prefix, nth = sys.argv[1:6]
    seen = 0

    class Killing(FilesystemStore):
        def _hit(self, name, k):
            global seen
            if name == verb and k.startswith(prefix):
                seen += 1
                if seen == int(nth):
                    os.kill(os.getpid(), signal.SIGKILL)

        def put(self, k, data, **kw):
            self._hit("put", k)
            super().put(k, data, **kw)

        def delete(self, k):
            self._hit("delete", k)
            super().delete(k)

    repo = Repository.open(Killing(Path(root), "local"), load_master_key(Path(key)))
    repo.prune()
    """
)


def _snapshot(repo: Repository, data: bytes) -> str:
    return write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="s"))[0].id


@pytest.mark.parametrize(
    ("verb", "prefix", "nth"),
    [
        ("put", "packs/", 1),  # while the first new pack is written
        ("put", "packs/", 3),  # part way through the new packs
        ("put", "index/", 1),  # before the new index
        ("delete", "index/", 2),  # between deleting old indexes
        ("delete", "packs/", 1),  # before the first old pack goes
        ("delete", "packs/", 4),  # part way through deleting old packs
    ],
)
def test_kill_during_repack_leaves_every_snapshot_readable(
    tmp_path: Path, verb: str, prefix: str, nth: int
) -> None:
    """After kill -9 at that step, verify --read-data passes and every kept snapshot restores
    byte for byte; a second prune completes and leaves the same snapshots intact."""
    key = tmp_path / "master.key"
    master = generate_master_key(key)
    root = tmp_path / "repo"
    # one upload thread: chunks fill packs in stream order, so the plan is the same each run
    repo = Repository.init(
        FilesystemStore(root, "local"),
        master,
        chunker_params=SMALL,
        pack_size=TINY_PACKS,
        concurrency=1,
    )
    # One snapshot interleaves pieces that later snapshots reuse with pieces no one else
    # does; once it is forgotten its packs are partly used, and prune rewrites them.
    keep = [text_data(800, seed=10 + i) for i in range(5)]
    drop = [text_data(800, seed=50 + i) for i in range(5)]
    big = _snapshot(repo, b"".join(a + b for a, b in zip(keep, drop, strict=True)))
    kept = {_snapshot(repo, data): data for data in keep}
    repo.forget_manifest(big)
    assert repo.prune(dry_run=True).repacked >= 3  # the prune below rewrites packs
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(key), verb, prefix, str(nth)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -9, child.stderr  # killed at the chosen step

    def check() -> None:
        after = Repository.open(FilesystemStore(root, "local"), load_master_key(key))
        assert after.verify(read_data=True).ok
        for sid, data in kept.items():
            assert after.restore_stream(sid).read() == data

    check()
    report = Repository.open(FilesystemStore(root, "local"), load_master_key(key)).prune()
    assert report.deleted_objects > 0
    check()
