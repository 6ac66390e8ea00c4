"""Built-in faults do what they say during the drill and are undone automatically after it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoveryd.drills.api import run_playbook
from tests.fixtures.sshd import free_port
from tests.unit.drills.helpers import records, write_playbook

pytestmark = pytest.mark.integration
HEAD = "apiVersion: recoveryd/v1\nkind: Drill\nname: faults\n"


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    proc = subprocess.Popen(["sleep", "300"])
    pid_file = tmp_path / "sleeper.pid"
    pid_file.write_text(f"{proc.pid}\n")
    try:
        yield proc, pid_file
    finally:
        proc.kill()
        proc.wait()


def test_stop_process_freezes_it_during_the_drill_and_resumes_it_after(
    tmp_path: Path, sleeper: tuple[subprocess.Popen[bytes], Path]
) -> None:
    """`stop_process` freezes the process (state T) while the drill runs; the undo resumes it."""
    proc, pid_file = sleeper
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: freeze
    fault: {{action: stop_process, pid_file: "{pid_file}"}}
  - name: frozen now
    run: [sh, -c, 'test "$(cut -d")" -f2 /proc/{proc.pid}/stat | cut -d" " -f2)" = T']
""",
    )
    result = run_playbook(None, book, yes=True, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    assert _state(proc.pid) in ("S", "R")
    assert [r["name"] for r in records(result.journal, "rollback")] == ["undo: freeze"]


def test_kill_process_runs_its_restart_as_undo(
    tmp_path: Path, sleeper: tuple[subprocess.Popen[bytes], Path]
) -> None:
    """`kill_process` kills it and waits until it is gone; its `restart` runs as the undo."""
    proc, pid_file = sleeper
    restarted = tmp_path / "restarted"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: kill it
    fault: {{action: kill_process, pid_file: "{pid_file}", restart: [touch, "{restarted}"]}}
""",
    )
    result = run_playbook(None, book, yes=True, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    assert proc.wait(10) is not None
    assert restarted.exists()


def test_block_port_takes_the_port_and_releases_it(tmp_path: Path) -> None:
    """`block_port` holds the port (a service cannot bind it) during the drill only."""
    port = free_port()
    if shutil.which("iptables"):
        pytest.skip("with iptables present the fault inserts a rule instead of a squatter")
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: block
    fault: {{action: block_port, port: {port}}}
  - name: a service cannot bind it
    run: ["{sys.executable}", -c, "import socket; socket.socket().bind(('127.0.0.1', {port}))"]
    expect: {{exit: 1}}
""",
    )
    result = run_playbook(None, book, yes=True, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # released


def test_fill_disk_fills_to_the_level_and_cleans_up(tmp_path: Path) -> None:
    """`fill_disk` fills the filesystem to the level during the drill; the undo frees it."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        book = write_playbook(
            tmp_path,
            HEAD
            + f"""
steps:
  - name: fill
    fault: {{action: fill_disk, path: "{mnt}", level: 90}}
  - name: the disk is nearly full
    run: [sh, -c, "df --output=pcent '{mnt}' | tail -1 | tr -dc 0-9"]
    expect: ">= 89"
""",
        )
        result = run_playbook(None, book, yes=True, state_dir=tmp_path / "state")
        assert result.status == "passed", result.error
        assert shutil.disk_usage(mnt).used < 1024 * 1024
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
