"""Two-person approval of destructive steps, with real OS users signing with their own keys."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoveryd.drills.api import run_playbook
from tests.forkcli import cli_pool
from tests.unit.drills.helpers import REPO, records, write_playbook

pytestmark = pytest.mark.integration
USERS = ("rd-approver-a", "rd-approver-b")


def as_user(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`recoveryd ARGS` as OS user `user` (HOME=/, no SUDO_USER): a child forked from the
    session's interpreter, which imported everything as root, that becomes the user before
    the command runs, so the files it creates (the approval) are that user's."""
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    ran = cli_pool().run(REPO, list(args), env={**env, "HOME": "/"}, timeout=120, user=user)
    argv = ["recoveryd", *args]
    if ran is None:
        raise subprocess.TimeoutExpired(argv, 120)
    return subprocess.CompletedProcess(argv, ran.code, ran.out, ran.err)


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


def test_approvers_sign_as_themselves_and_file_ownership_does_not_matter(
    approvers: tuple[str, ...], shared_state: Path
) -> None:
    """Two OS users make their own keys and sign with `drill approve --key`; the runner counts
    their signatures whoever owns the files; root, the operator and no approver, is refused;
    the same person twice is refused."""
    book_dir = shared_state.parent
    marker = book_dir / "destroyed"
    keys = {}
    for user in approvers:
        home = book_dir / user
        home.mkdir()
        os.chown(home, pwd.getpwnam(user).pw_uid, -1)
        made = as_user(user, "approver", "keygen", user, "--out", str(home))
        assert made.returncode == 0, made.stderr
        keys[user] = home / f"{user}.key"
    config = book_dir / "recoveryd.yaml"
    config.write_text(
        f"state_dir: {shared_state}\n"
        "encryption: {key_file: ./master.key}\n"
        "targets: {local: {kind: filesystem, path: ./store}}\n"
        "approval_policy: {destructive_min: 2}\n"
        "approvers:\n"
        + "".join(f"  {u}: {{public_key_file: {keys[u].with_suffix('.pub')}}}\n" for u in approvers)
    )
    book = write_playbook(
        book_dir,
        f"""\
        apiVersion: recoveryd/v1
        kind: Drill
        name: two-person
        approvals: {{timeout: 120s}}
        steps:
          - {{name: destructive change, run: [touch, "{marker}"], destructive: true}}
        """,
    )
    seen: dict[str, subprocess.CompletedProcess[str]] = {}

    def approve(rec: dict[str, object]) -> None:
        data = rec.get("data")
        if rec["type"] != "event" or not isinstance(data, dict):
            return
        run_id = str(data["command"]).split()[3]
        base = ("--config", str(config), "drill", "approve", run_id)
        seen["root"] = as_user("root", *base, "--key", str(keys[approvers[0]]), "--as", "root")
        seen["first"] = as_user(approvers[0], *base, "--key", str(keys[approvers[0]]))
        seen["again"] = as_user(approvers[0], *base, "--key", str(keys[approvers[0]]))
        seen["second"] = as_user(approvers[1], *base, "--key", str(keys[approvers[1]]))

    from recoveryd.config import load_config

    result = run_playbook(load_config(config), book, state_dir=shared_state, listener=approve)
    assert seen["root"].returncode == 5 and "not a configured approver" in seen["root"].stderr
    assert seen["first"].returncode == 0, seen["first"].stderr
    assert seen["again"].returncode == 5 and "already approved" in seen["again"].stderr
    assert seen["second"].returncode == 0, seen["second"].stderr
    assert result.status == "passed", result.error
    assert marker.exists()
    assert [r["user"] for r in records(result.journal, "approval")] == list(approvers)
