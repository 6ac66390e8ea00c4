"""Remote commands end with their step: over a real OpenSSH server (whose remote shell is
Debian's dash), a step that times out or is aborted takes its whole remote process group
with it, grandchildren included, with TERM and then KILL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from recoveryd.drills.api import run_playbook
from tests.fixtures.sshd import SshServer
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
        subprocess.run(["pkill", "-KILL", "-f", marker], check=False)


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
        subprocess.run(["pkill", "-KILL", "-f", marker], check=False)
