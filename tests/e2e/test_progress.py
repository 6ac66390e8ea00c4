"""Progress that informs: verify, copy, restore and backup report bytes advancing to a
known total (percent, rate, ETA) in the JSON lines of unattended runs. Filesystem stores,
local SQLite files and directories, the CLI in-process with its line interval set to 0."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from recoveryd.cli import progress
from tests.e2e.conftest import Deployment, fs_target


@pytest.fixture(autouse=True)
def every_update_is_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON progress line for every update (not every 10 s), so short work shows."""
    monkeypatch.setattr(progress, "INTERVAL", 0.0)


def lines(err: str, operation: str) -> list[dict[str, Any]]:
    found = [json.loads(x) for x in err.splitlines() if x.startswith('{"event": "progress"')]
    return [x for x in found if x["operation"] == operation]


def check_advances_to_total(found: list[dict[str, Any]], total: int) -> None:
    """Bytes grow monotonically to the total; the final line says 100% and ETA 0."""
    assert len(found) >= 3, found
    done = [x["read_bytes"] for x in found]
    assert done == sorted(done) and done[0] < total
    assert {x["total_bytes"] for x in found} == {total}
    last = found[-1]
    assert last["final"] is True
    assert (last["read_bytes"], last["percent"], last["eta_seconds"]) == (total, 100.0, 0.0)
    assert last["rate_bytes_per_second"] is not None
    assert {"stored_bytes", "chunks", "new_chunks", "elapsed_seconds"} <= set(last)


def files_source(deployment: Deployment, tmp_path: Path, targets: list[str]) -> Path:
    src = tmp_path / "files"
    src.mkdir()
    for i in range(4):
        (src / f"f{i}.bin").write_bytes(os.urandom(3 * 1024 * 1024 + i))
    deployment.configure(
        targets={t: fs_target(tmp_path / t) for t in ("a", "b")},
        sources={"files": {"kind": "directory", "path": str(src), "targets": targets}},
    )
    return src


@pytest.mark.integration
def test_verify_copy_and_restore_progress_advances_to_the_snapshot_size(
    deployment: Deployment, tmp_path: Path
) -> None:
    """`verify --read-data`, `copy` and `restore` report bytes advancing to the snapshot's
    size, with percent, rate and ETA (they stayed at 0 bytes before)."""
    files_source(deployment, tmp_path, ["a"])
    snap = deployment.backup()[0]
    size = snap["size"]
    check_advances_to_total(
        lines(deployment.cli("verify", "--read-data").expect(0).err, "verify"), size
    )
    copied = deployment.cli("copy", "--from", "a", "--to", "b").expect(0)
    check_advances_to_total(lines(copied.err, "copy"), size)
    restored = deployment.cli("restore", snap["id"], "--to", str(tmp_path / "out")).expect(0)
    check_advances_to_total(lines(restored.err, "restore"), size)


@pytest.mark.integration
def test_a_sqlite_backup_knows_its_total(deployment: Deployment, tmp_path: Path) -> None:
    """The backup of a SQLite database reports the database's size as its total: percent
    and ETA from the first line, 100% at the end."""
    db = tmp_path / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v BLOB)")
        conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(4000),) for _ in range(2500)])
    conn.close()
    deployment.configure(
        targets={"a": fs_target(tmp_path / "a")},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["a"]}},
    )
    res = deployment.cli("backup").expect(0)
    check_advances_to_total(lines(res.err, "backup"), db.stat().st_size)


@pytest.mark.integration
def test_a_directory_backup_estimates_its_total(deployment: Deployment, tmp_path: Path) -> None:
    """The backup of a directory reports an estimate of its tar stream as total, within 2%
    of the bytes actually read, so percent and ETA mean something."""
    files_source(deployment, tmp_path, ["a"])
    res = deployment.cli("backup").expect(0)
    found = lines(res.err, "backup")
    assert len(found) >= 3
    total, read = found[-1]["total_bytes"], found[-1]["read_bytes"]
    assert total is not None and abs(total - read) / read < 0.02, (total, read)
    assert found[0]["percent"] is not None and found[0]["eta_seconds"] is not None
