"""Two-person approval of destructive steps, with real OS users running `drill approve`."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoveryd.drills.api import DrillResult, run_playbook
from tests.unit.drills.helpers import REPO, records, write_playbook

pytestmark = pytest.mark.integration
USERS = ("rd-approver-a", "rd-approver-b")

# Imports everything while still root (the interpreter lives under root's home), then
# becomes the user and runs the CLI: the approval file is created by that user.
AS_USER = """
import os, pwd, sys
import recoveryd.cli.main as m
import recoveryd.drills.api
m.build_parser()
user = pwd.getpwnam(sys.argv[1])
os.setgroups([])
os.setgid(user.pw_gid)
os.setuid(user.pw_uid)
os.environ.pop("SUDO_USER", None)
os.environ["HOME"] = "/"
sys.exit(m.main(sys.argv[2:]))
"""


def as_user(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AS_USER, user, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def approvers() -> tuple[str, ...]:
    """Two OS users (created when missing) who can approve drills."""
    if shutil.which("useradd") is None or os.geteuid() != 0:
        pytest.skip("creating OS users needs root and useradd")
    for user in USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user],
                check=True,
            )
    return USERS


@pytest.fixture
def shared_state() -> Iterator[Path]:
    """A state directory other users can reach (pytest's tmp tree is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="recoveryd-approvals-"))
    root.chmod(0o755)
    try:
        yield root / "state"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_two_people_must_approve_and_the_same_person_twice_is_refused(
    approvers: tuple[str, ...], shared_state: Path
) -> None:
    """With approvals: {required: 2} a destructive step waits for two different people; the
    operator cannot approve, one person approving twice is refused, two people succeed."""
    book_dir = shared_state.parent
    marker = book_dir / "destroyed"
    book = write_playbook(
        book_dir,
        f"""\
        apiVersion: recoveryd/v1
        kind: Drill
        name: two-person
        approvals: {{required: 2, timeout: 120s}}
        steps:
          - {{name: destructive change, run: [touch, "{marker}"], destructive: true}}
        """,
    )
    box: dict[str, DrillResult] = {}
    thread = threading.Thread(
        target=lambda: box.update(r=run_playbook(None, book, state_dir=shared_state))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        waiting = list((shared_state / "drills").glob("*/waiting.json"))
        while not waiting:
            assert time.monotonic() < deadline, "the run never asked for approval"
            time.sleep(0.05)
            waiting = list((shared_state / "drills").glob("*/waiting.json"))
        run_id = waiting[0].parent.name
        base = ("drill", "--state-dir", str(shared_state), "approve", run_id)
        assert not marker.exists()

        operator = as_user("root", *base)
        assert operator.returncode == 5, operator.stderr
        assert "cannot approve" in operator.stderr

        first = as_user(approvers[0], *base)
        assert first.returncode == 0, first.stderr
        again = as_user(approvers[0], *base)
        assert again.returncode == 5, again.stderr
        assert "already approved" in again.stderr
        assert not marker.exists()

        second = as_user(approvers[1], *base)
        assert second.returncode == 0, second.stderr
        thread.join(60)
    finally:
        thread.join(1)
    result = box["r"]
    assert result.status == "passed", result.error
    assert marker.exists()
    assert [r["user"] for r in records(result.journal, "approval")] == list(approvers)
