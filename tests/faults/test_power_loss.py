"""A simulated power loss during backups and prunes of a filesystem target.

Uses the PowerLossStore test double (tests/faults/powerloss.py; it says why a double):
the real filesystem store writes real files, and at a seeded operation the power
goes out; on "reboot" a seeded subset of the changes that were never fsynced is
dropped. After the reboot: every snapshot committed before the cut (and not
forgotten by retention) is listed, every listed snapshot verifies with its data,
and the next backup and prune succeed.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import pytest

from recoveryd.repo import Policy, Repository, SnapshotMeta, locks, write_snapshot
from recoveryd.stores.filesystem import FilesystemStore
from tests.faults.conftest import Tally, points
from tests.faults.powerloss import PowerCut, PowerLossStore, install
from tests.unit.repo.helpers import SMALL, BytesReader, master

ROUNDS = 4
# Seeds whose cut brought back a forgotten manifest whose chunks prune had already
# deleted (the filesystem store did not fsync the directory after a delete).
FOUND = (0, 24, 38)
SEEDS = sorted(set(range(points(40, 4))) | set(FOUND))


def _workload(repo: Repository, rng: random.Random, committed: list[str]) -> None:
    """Backups of growing data, each followed by a prune that keeps the two newest.

    `committed` holds the snapshots whose backup returned, in order."""
    data = b""
    for _ in range(ROUNDS):
        data += rng.randbytes(40_000)
        (info,) = write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="db"))
        committed.append(info.id)
        report = repo.forget({"db": Policy(keep_last=2)})
        for sid in report.forgotten:
            committed.remove(sid)


def _run(
    root: Path, seed: int, cut_at: int | None, monkeypatch: pytest.MonkeyPatch
) -> tuple[PowerLossStore, list[str]]:
    store = PowerLossStore(root, "local", cut_at=None, seed=seed)
    with monkeypatch.context() as m:
        install(store, m)
        # Keys, nonces and ids from the seed too: the same seed cuts at the same object.
        m.setattr(os, "urandom", random.Random(f"urandom-{seed}").randbytes)
        repo = Repository.init(store, master(), chunker_params=SMALL, concurrency=1)
        store.initialised = store.ops  # the power is cut after the repository exists
        store.cut_at = None if cut_at is None else store.ops + cut_at
        committed: list[str] = []
        with contextlib.suppress(PowerCut):
            _workload(repo, random.Random(seed), committed)
    return store, committed


@pytest.mark.parametrize("seed", SEEDS)
def test_power_loss_keeps_every_committed_snapshot_whole(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, campaign: Tally
) -> None:
    """Power lost at a seeded store operation of backups and prunes: after the reboot
    nothing committed is missing, everything listed verifies, and work goes on."""
    calibration, _ = _run(tmp_path / "calibrate", seed, None, monkeypatch)
    cut_at = random.Random(seed).randrange(calibration.ops - calibration.initialised)
    store, committed = _run(tmp_path / "store", seed, cut_at, monkeypatch)
    assert store.dead, "the power was never cut"
    store.reboot()
    campaign.add("fault:power_loss")
    monkeypatch.setattr(locks, "boot_id", lambda: f"after-power-loss-{seed}")
    repo = Repository.open(FilesystemStore(tmp_path / "store", "local"), master())
    listed = repo.snapshot_ids()
    where = f"seed {seed}, cut at operation {cut_at}, {store.dropped} unsynced changes dropped"
    # The policy keeps the two newest; older ones may be mid-forget when the power goes.
    assert set(committed[-2:]) <= set(listed), f"{where}: committed snapshots lost"
    report = repo.verify(read_data=True)
    assert report.ok, f"{where}: {report.problems}"
    write_snapshot(BytesReader(b"after the reboot" * 5000), [repo], SnapshotMeta(source="db"))
    repo.prune()
    assert repo.verify(read_data=True).ok
