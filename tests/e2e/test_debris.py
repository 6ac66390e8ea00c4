"""Nothing left behind: signals and kill -9 during restores and backups leave at most a
staging folder that the next run removes (saying so); no plaintext copy of a database in
the system temp folder; temp objects of killed writers are collected by prune; trees with
symlinks pointing outside come back. Real processes (`python -m recoveryd`), real signals,
local SQLite files and directories."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment, fs_target
from tests.e2e.test_crash import wait_until

STAGING = ".recoveryd-restoring-"


def staged_bytes(parent: Path) -> int:
    """Bytes already extracted into a restore's staging folder, beside or inside the
    destination (older versions staged inside it)."""
    folders = [*parent.glob(f"{STAGING}*"), *parent.glob(f"*/{STAGING}*")]
    return sum(p.stat().st_size for f in folders for p in f.rglob("*") if p.is_file())


def slow_restore_setup(deployment: Deployment, tmp_path: Path) -> tuple[str, Path]:
    """A directory snapshot of 24 MiB (several files) in a store read at 4 MiB/s, so a
    restore of it is still running when the test signals it; returns (snapshot id, the
    folder the restore's destination goes in)."""
    src = tmp_path / "files"
    src.mkdir()
    for i in range(6):
        (src / f"part-{i}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    store = tmp_path / "store"
    sources = {"files": {"kind": "directory", "path": str(src), "targets": ["local"]}}
    deployment.configure(targets={"local": fs_target(store)}, sources=sources)
    sid = deployment.backup()[0]["id"]
    slow = {"local": {**fs_target(store), "max_bandwidth": "4MiB/s"}}
    deployment.configure(targets=slow, sources=sources)
    parent = tmp_path / "restores"
    parent.mkdir()
    return sid, parent


CLI = (sys.executable, "-m", "recoveryd", "--config")


def start_restore(
    deployment: Deployment, sid: str, dest: Path, *, background: bool = False
) -> subprocess.Popen[bytes]:
    """A slow restore, running; `background`: started as a shell's `&` job is, with SIGINT
    ignored."""
    proc = (
        deployment.spawn("restore", sid, "--to", str(dest))
        if not background
        else subprocess.Popen(
            [*CLI, str(deployment.config), "restore", sid, "--to", str(dest)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    )
    wait_until(proc, lambda: staged_bytes(dest.parent) > 0, time.monotonic() + 300)
    assert proc.poll() is None, "the restore ended before it could be interrupted"
    return proc


@pytest.mark.integration
@pytest.mark.parametrize(
    "sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=["SIGHUP", "SIGTERM", "SIGINT"]
)
def test_a_signalled_directory_restore_leaves_nothing(
    deployment: Deployment, tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGHUP (the terminal closed), SIGTERM or SIGINT during a directory restore: exit 130,
    and neither the destination nor any staging folder is left; the next restore works."""
    sid, parent = slow_restore_setup(deployment, tmp_path)
    dest = parent / "files"
    proc = start_restore(deployment, sid, dest)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)  # a hang guard; the machine may be loaded
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert list(parent.iterdir()) == []
    deployment.cli("restore", sid, "--to", str(dest)).expect(0)
    assert sorted(p.name for p in dest.iterdir()) == [f"part-{i}.bin" for i in range(6)]


@pytest.mark.integration
def test_sigint_stops_a_restore_started_in_the_background(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A restore started as a shell's background job (SIGINT inherited as ignored) still
    stops on `kill -INT` like one in a terminal: exit 130, nothing left behind."""
    sid, parent = slow_restore_setup(deployment, tmp_path)
    proc = start_restore(deployment, sid, parent / "files", background=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)  # a hang guard; the machine may be loaded
    assert proc.returncode == 130, err.decode()
    assert list(parent.iterdir()) == []


@pytest.mark.integration
def test_a_killed_directory_restore_leaves_only_staging_that_the_next_one_removes(
    deployment: Deployment, tmp_path: Path
) -> None:
    """kill -9 during a directory restore leaves nothing but one staging folder beside the
    destination (no half-filled destination); the next restore to it removes that folder,
    says so on stderr, and restores everything."""
    sid, parent = slow_restore_setup(deployment, tmp_path)
    dest = parent / "files"
    proc = start_restore(deployment, sid, dest)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    left = list(parent.iterdir())
    assert len(left) == 1, left
    assert left[0].name.startswith(f"{STAGING}files-")
    done = deployment.cli("restore", sid, "--to", str(dest)).expect(0)
    assert f"removed {left[0]}: staging folder left by an interrupted restore" in done.err
    assert sorted(p.name for p in parent.iterdir()) == ["files"]
    assert sorted(p.name for p in dest.iterdir()) == [f"part-{i}.bin" for i in range(6)]


@pytest.mark.integration
def test_a_sqlite_restore_creates_missing_parent_folders(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A SQLite snapshot restores to a path whose folders do not exist yet, like a
    directory snapshot does."""
    db = tmp_path / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO people (name) VALUES ('Ada')")
    conn.close()
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["local"]}},
    )
    sid = deployment.backup()[0]["id"]
    dest = tmp_path / "new" / "deeper" / "registry.db"
    deployment.cli("restore", sid, "--to", str(dest)).expect(0)
    with sqlite3.connect(dest) as conn:
        assert conn.execute("SELECT name FROM people").fetchall() == [("Ada",)]
    conn.close()


def registry_source(deployment: Deployment, tmp_path: Path) -> Path:
    """A SQLite source of a few hundred KiB in a filesystem repository; returns its file."""
    db = tmp_path / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO people (name) VALUES (?)", [("x" * 100,)] * 1000)
    conn.close()
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["local"]}},
    )
    return db


def backup_while_copying(
    deployment: Deployment, db: Path, tmpdir: Path, sig: signal.Signals
) -> subprocess.Popen[bytes]:
    """Start `backup` with $TMPDIR set, send `sig` once the online backup's copy file exists,
    and return the ended process. An exclusive transaction makes the online backup wait
    (busy timeout) with its copy file already created, so the signal lands while the copy
    exists, deterministically; the transaction ends right after the signal."""
    staging = deployment.state_dir / "staging"

    def copies() -> list[Path]:
        return [*tmpdir.glob("recoveryd-sqlite-*"), *staging.glob("*/*.db")]

    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recoveryd", "--config", str(deployment.config), "backup"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "TMPDIR": str(tmpdir)},
        )
        wait_until(proc, lambda: bool(copies()), time.monotonic() + 300)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    proc.communicate(timeout=120)
    return proc


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_signalled_sqlite_backup_leaves_no_copy_anywhere(
    deployment: Deployment, tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGHUP or SIGTERM while the online backup copies a SQLite database: exit 130, nothing
    committed, and no copy left, neither in $TMPDIR nor under the state directory."""
    db = registry_source(deployment, tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = backup_while_copying(deployment, db, tmpdir, sig)
    assert proc.returncode == 130
    assert list(tmpdir.iterdir()) == []
    staging = deployment.state_dir / "staging"
    assert [p for p in staging.iterdir() if not p.name.startswith(".")] == []
    assert deployment.snapshots() == []


@pytest.mark.integration
def test_a_killed_sqlite_backup_leaves_no_plaintext_in_tmpdir(
    deployment: Deployment, tmp_path: Path
) -> None:
    """kill -9 while the online backup copies a SQLite database: no copy is left in $TMPDIR
    (a plaintext population registry); what is left is in a private (0700) staging folder
    under the state directory, which the next backup removes, saying so."""
    db = registry_source(deployment, tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    staging = deployment.state_dir / "staging"
    backup_while_copying(deployment, db, tmpdir, signal.SIGKILL)
    assert list(tmpdir.iterdir()) == []
    left = [p for p in staging.iterdir() if not p.name.startswith(".")]
    assert len(left) == 1, left
    assert staging.stat().st_mode & 0o777 == 0o700
    assert left[0].stat().st_mode & 0o777 == 0o700
    done = deployment.cli("backup").expect(0)
    assert f"removed {left[0]}: staging folder left by an interrupted run" in done.err
    assert [p for p in staging.iterdir() if not p.name.startswith(".")] == []
    assert list(tmpdir.iterdir()) == []


@pytest.mark.integration
def test_prune_collects_temp_objects_of_killed_writers_after_a_grace_period(
    deployment: Deployment, tmp_path: Path
) -> None:
    """`.tmp-*` files that a killed `copy` or `backup` left in a filesystem store (written
    here directly: the kill window of a single put is too small to hit reliably) are
    removed by prune once older than the grace period; a fresh one (a write that may still
    be running) is kept; `--json` counts them."""
    src = tmp_path / "files"
    src.mkdir()
    (src / "a.txt").write_text("a")
    store = tmp_path / "store"
    deployment.configure(
        targets={"local": fs_target(store)},
        sources={"files": {"kind": "directory", "path": str(src), "targets": ["local"]}},
    )
    deployment.backup()
    chunk_dir = next(p for p in (store / "packs").iterdir() if p.is_dir())
    old = chunk_dir / ".tmp-0123456789abcdef0123456789abcdef"
    old.write_bytes(b"x" * 4096)
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    fresh = store / "snapshots" / ".tmp-fedcba9876543210fedcba9876543210"
    fresh.write_bytes(b"y")
    report = deployment.cli("--json", "prune").expect(0).data
    assert report["targets"][0]["removed_temp_objects"] == 1
    assert not old.exists()
    assert fresh.exists()
    deployment.cli("verify", "--read-data").expect(0)


@pytest.mark.integration
def test_a_tree_with_symlinks_pointing_outside_backs_up_and_restores(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A directory holding a symlink to a folder outside it (and an absolute one) is backed
    up and restored completely through the CLI: links as links, every file restored, and
    nothing written where the links point."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "logo.png").write_bytes(b"outside")
    src = tmp_path / "site"
    src.mkdir()
    (src / "index.html").write_text("<h1>hi</h1>")
    (src / "assets").symlink_to("../shared")
    (src / "abs-logo.png").symlink_to(shared / "logo.png")
    (src / "zz.txt").write_text("last")
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"site": {"kind": "directory", "path": str(src), "targets": ["local"]}},
    )
    sid = deployment.backup()[0]["id"]
    dest = tmp_path / "restored"
    deployment.cli("restore", sid, "--to", str(dest)).expect(0)
    assert sorted(p.name for p in dest.iterdir()) == [
        "abs-logo.png",
        "assets",
        "index.html",
        "zz.txt",
    ]
    assert os.readlink(dest / "assets") == "../shared"
    assert os.readlink(dest / "abs-logo.png") == str(shared / "logo.png")
    assert (dest / "zz.txt").read_text() == "last"
    assert sorted(p.name for p in shared.iterdir()) == ["logo.png"]
