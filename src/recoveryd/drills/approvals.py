"""Approvals for destructive steps: `recoveryd drill approve RUN_ID`, one file per person.

The runner creates `state_dir/drills/RUN_ID/approvals/` (sticky and
world-writable, like /tmp, so other operators can drop their approval) and
`waiting.json` naming the operator and how many approvals it waits for.
`approve` creates `approvals/<user>` exclusively as the approving OS user: the
same person twice is refused, the operator who started the run is refused,
and the runner only counts a regular, singly linked file owned by the user it
names (root may approve on behalf of `$SUDO_USER`); symlinks and hard links are
ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from recoveryd.drills.journal import run_dir
from recoveryd.errors import RefusedError, UsageError

POLL = 0.2


def current_user() -> str:
    """The person behind this process: `$SUDO_USER` under sudo, else the effective user."""
    sudo = os.environ.get("SUDO_USER")
    if os.geteuid() == 0 and sudo:
        return sudo
    return pwd.getpwuid(os.geteuid()).pw_name


def _owner(path: Path) -> str | None:
    """The owner of a plain approval file; None for anything else.

    The folder is world-writable, so a symlink or a hard link there could borrow
    another user's (or root's) ownership: only a regular file with a single link
    counts, and it is inspected without following links.
    """
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None
        return pwd.getpwuid(st.st_uid).pw_name
    except (KeyError, OSError):
        return None


def approve(state_dir: Path, run_id: str, user: str | None = None) -> str:
    """Give this OS user's approval to run `run_id`; returns the user name.

    RefusedError (exit 5) for the operator, a second approval by the same
    person, or a run that is not waiting for approval.
    """
    who = user or current_user()
    directory = run_dir(state_dir, run_id)
    if not (directory / "journal.jsonl").exists():
        raise UsageError(f"drill run {run_id} not found in {state_dir}; see `recoveryd drill list`")
    waiting = directory / "waiting.json"
    if not waiting.exists():
        raise RefusedError(f"drill run {run_id} is not waiting for approval")
    info = json.loads(waiting.read_text())
    if who == info.get("operator"):
        raise RefusedError(
            f"{who} started drill run {run_id} and cannot approve it; ask another person"
        )
    target = directory / "approvals" / who
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise RefusedError(
            f"{who} already approved drill run {run_id}; the next approval must come "
            "from another person"
        ) from None
    except PermissionError:
        raise RefusedError(f"cannot record the approval of {who} in {target.parent}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({"user": who, "time": time.time()}) + "\n")
    return who


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


class ApprovalBox:
    """The runner's side: counts valid approvals of one run."""

    def __init__(
        self,
        directory: Path,
        operator: str,
        on_approval: Callable[[str], None],
    ) -> None:
        self.directory = directory
        self.operator = operator
        self.on_approval = on_approval
        self.seen: list[str] = []

    def open(self, required: int) -> None:
        folder = self.directory / "approvals"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o1777)
        self.directory.chmod(0o755)
        with contextlib.suppress(OSError):
            self.directory.parent.chmod(0o755)
        (self.directory / "waiting.json").write_text(
            json.dumps({"operator": self.operator, "required": required})
        )

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "waiting.json").unlink()

    def _valid(self) -> list[str]:
        folder = self.directory / "approvals"
        found = []
        for entry in sorted(folder.iterdir(), key=_mtime):
            owner = _owner(entry)
            name = entry.name
            if name == self.operator or name in found:
                continue
            if owner == name or owner == "root":
                found.append(name)
        return found

    def wait_for(self, count: int, timeout: float, cancel: threading.Event) -> list[str]:
        """Block until `count` people other than the operator approved (cumulative per run)."""
        self.open(count)
        deadline = time.monotonic() + timeout
        try:
            while True:
                for user in self._valid():
                    if user not in self.seen:
                        self.seen.append(user)
                        self.on_approval(user)
                if len(self.seen) >= count:
                    return list(self.seen)
                if cancel.is_set():
                    raise InterruptedError
                if time.monotonic() > deadline:
                    raise TimeoutError
                cancel.wait(POLL)
        finally:
            self.close()
