"""Approvals cannot be forged through links in the world-writable approvals folder."""

from __future__ import annotations

import os
import pwd
import threading
from pathlib import Path

import pytest

from recoveryd.drills.approvals import ApprovalBox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def _box(tmp_path: Path) -> tuple[ApprovalBox, Path, pwd.struct_passwd]:
    other = pwd.getpwnam("nobody")
    box = ApprovalBox(tmp_path / "run", "operator", lambda user: None)
    box.open(1)
    victim = tmp_path / "victims-file"
    victim.write_text("not an approval\n")
    os.chown(victim, other.pw_uid, other.pw_gid)
    return box, victim, other


def test_a_symlink_to_someone_elses_file_is_not_their_approval(tmp_path: Path) -> None:
    """Anyone may write to the approvals folder: a symlink named after a user and pointing
    at a file that user (or root) owns must not count as that user's approval."""
    box, victim, other = _box(tmp_path)
    (box.directory / "approvals" / other.pw_name).symlink_to(victim)
    (box.directory / "approvals" / "someone").symlink_to("/etc/passwd")
    with pytest.raises(TimeoutError):
        box.wait_for(1, 0.3, threading.Event())


def test_a_hard_link_to_someone_elses_file_is_not_their_approval(tmp_path: Path) -> None:
    """A hard link named after a user to a file that user owns does not count either."""
    box, victim, other = _box(tmp_path)
    os.link(victim, box.directory / "approvals" / other.pw_name)
    with pytest.raises(TimeoutError):
        box.wait_for(1, 0.3, threading.Event())


def test_a_plain_file_of_the_named_user_counts(tmp_path: Path) -> None:
    """The approval `drill approve` writes, a plain file owned by the user it names, counts."""
    box, _, other = _box(tmp_path)
    own = box.directory / "approvals" / other.pw_name
    own.write_text("{}\n")
    os.chown(own, other.pw_uid, other.pw_gid)
    assert box.wait_for(1, 5, threading.Event()) == [other.pw_name]
