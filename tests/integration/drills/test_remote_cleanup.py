"""Remote commands end with their step: over a real OpenSSH server (whose remote shell is
Debian's dash), a step that times out or is aborted takes its whole remote process group
with it, grandchildren included, with TERM and then KILL."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recoveryd.drills.api import run_playbook
from recoveryd.remote import SshProcess, SshRunner
from tests.fixtures.sshd import SSHD, SshServer, start_sshd, wait_port
from tests.unit.drills.helpers import records, write_playbook

pytestmark = pytest.mark.integration


def _book(tmp_path: Path, sshd: SshServer, script: str, modifiers: str = "") -> Path:
    return write_playbook(
        tmp_path,
        f"""\
        apiVersion: recoveryd/v1
        kind: Drill
        name: remote-cleanup
        hosts:
          db: {{address: 127.0.0.1, port: {sshd.port}, user: root,
               key_file: "{sshd.client_key}", known_hosts: "{sshd.known_hosts}"}}
        steps:
          - name: spawn grandchildren
            ssh: db
            run: [sh, -c, '{script}']
            timeout: 2s
            {modifiers}
        """,
    )


def _survivors(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def _kill_survivors(marker: str) -> None:
    """After a failed assertion: the test's own leftovers (their unique marker), by pid."""
    for line in _survivors(marker):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def test_a_timed_out_remote_step_leaves_no_grandchild_running(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    """A remote step that times out ends its command and every process it started (they
    are in the command's own session and process group); the cleanup is journaled."""
    marker = "sleep 297.125"
    script = f'{marker} & {marker} & (sh -c "{marker}" &) ; wait'
    book = _book(tmp_path, sshd_server, script)
    try:
        result = run_playbook(None, book, state_dir=tmp_path / "state")
        assert result.status == "failed"
        step = records(result.journal, "step")[0]
        assert step["status"] == "timeout"
        assert _survivors(marker) == []
        assert "process group" in step["output"]
    finally:
        _kill_survivors(marker)


def test_a_grandchild_that_ignores_sigterm_is_killed_after_the_grace_period(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    """A remote process that ignores SIGTERM gets SIGKILL after the grace period."""
    marker = "sleep 296.375"
    script = f'trap "" TERM; {marker} & wait'
    book = _book(tmp_path, sshd_server, script)
    try:
        result = run_playbook(None, book, state_dir=tmp_path / "state")
        step = records(result.journal, "step")[0]
        assert step["status"] == "timeout"
        assert _survivors(marker) == []
        assert "KILL" in step["output"]
    finally:
        _kill_survivors(marker)


@pytest.fixture
def one_session_sshd(tmp_path: Path) -> Iterator[SshServer]:
    """A real sshd of this test's own that allows one session per connection (MaxSessions
    1), so that the step's command holds the only one and the cleanup cannot open another."""
    server = start_sshd(tmp_path / "sshd")
    server.proc.terminate()
    server.proc.wait(10)
    config = server.dir / "sshd_config"
    config.write_text(config.read_text().replace("MaxSessions 50", "MaxSessions 1"))
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(server.port)
        yield dataclasses.replace(server, proc=proc)
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_cleanup_that_fails_is_journaled_with_its_reason(
    one_session_sshd: SshServer, tmp_path: Path
) -> None:
    """When the remote process group cannot be signalled (here the server refuses a second
    session), the step's journal record says that the cleanup failed and why, instead of
    the error being discarded."""
    marker = "sleep 295.625"
    book = _book(tmp_path, one_session_sshd, f"{marker} & wait")
    try:
        result = run_playbook(None, book, state_dir=tmp_path / "state")
        step = records(result.journal, "step")[0]
        assert step["status"] == "timeout"
        assert "cleanup" in step["output"] and "failed" in step["output"]
        assert "MaxSessions" in step["output"]
    finally:
        _kill_survivors(marker)


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[SshServer]:
    """A real sshd of this test's own, whose connections the test may cut."""
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.proc.terminate()
        server.proc.wait(10)


def _descendants(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    children = [int(p) for p in found.stdout.split()]
    return children + [d for c in children for d in _descendants(c)]


def _cut_connections_once_running(server: SshServer, started: list[SshProcess]) -> threading.Thread:
    """In the background: once the remote command has reported its process group, SIGKILL
    the sshd processes serving its connection (as a network failure would end it); the
    server keeps listening."""

    def cut() -> None:
        deadline = time.monotonic() + 60
        while not (started and started[0].pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in _descendants(server.proc.pid):
            comm = Path(f"/proc/{pid}/comm")
            with contextlib.suppress(OSError):
                if comm.read_text().strip() == "sshd":
                    os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=cut, daemon=True)
    thread.start()
    return thread


def test_a_remote_step_whose_connection_is_lost_is_cleaned_up_through_a_new_one(
    own_sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the SSH connection drops while a remote step runs, the step fails saying so, and
    its process group is ended through a new connection: no grandchild survives."""
    marker = "sleep 294.875"
    book = _book(tmp_path, own_sshd, f"{marker} & {marker} & wait", "")
    book.write_text(book.read_text().replace("timeout: 2s", "timeout: 120s"))
    started: list[SshProcess] = []
    real_start = SshRunner.start

    def start(self: SshRunner, *args: Any, **kwargs: Any) -> SshProcess:
        """The real start; the process is kept so the test sees when its pid arrived."""
        proc = real_start(self, *args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(SshRunner, "start", start)
    cutter = _cut_connections_once_running(own_sshd, started)
    try:
        result = run_playbook(None, book, state_dir=tmp_path / "state")
        cutter.join(60)
        step = records(result.journal, "step")[0]
        assert step["status"] == "failed"
        assert "connection was lost" in step["error"]
        assert "process group" in step["output"]
        assert _survivors(marker) == []
    finally:
        _kill_survivors(marker)
