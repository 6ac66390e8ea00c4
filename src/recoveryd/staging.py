"""Private staging folders under the state directory, and the sweep of crashed runs' ones.

Anything that must touch local disk on its way into the repository (the SQLite
online-backup copy, a password file for a dump tool) is written into a folder
of its own under `<state_dir>/staging/` (0700, like the folder itself), never
into the world-readable system temp directory: a copy of a database is
plaintext. The folder is removed when the work ends, whatever way it ends; a
process killed outright (SIGKILL, power loss) leaves it behind, and the next
run removes it, saying so in a warning.

Each folder holds `.owner`, locked (flock) by the process using it: the kernel
releases the lock when that process dies, however it dies, so a sweep removes
exactly the folders of dead processes and never one in use by a concurrent run
(the daemon and a CLI backup may stage at the same time). Creation and sweep
exclude each other through `.sweep.lock`, so a folder is never swept between
its creation and its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

STAGING_DIRNAME = "staging"
_OWNER = ".owner"
_SWEEP_LOCK = ".sweep.lock"

log = logging.getLogger("recoveryd.staging")


def staging_root(state_dir: Path) -> Path:
    """`<state_dir>/staging`, created when missing, always mode 0700."""
    root = state_dir / STAGING_DIRNAME
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    return root


@contextlib.contextmanager
def _root_lock(root: Path, mode: int) -> Iterator[None]:
    fd = os.open(root / _SWEEP_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def sweep(state_dir: Path) -> list[Path]:
    """Remove the staging folders of processes that are gone; returns what was removed.

    Each removal is logged as a warning naming the folder."""
    root = state_dir / STAGING_DIRNAME
    if not root.is_dir():
        return []
    removed: list[Path] = []
    with _root_lock(root, fcntl.LOCK_EX):
        for entry in sorted(root.iterdir()):
            if entry.name == _SWEEP_LOCK or not _abandoned(entry):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
            log.warning(
                "removed %s: staging folder left by an interrupted run (its process is gone)",
                entry,
            )
    return removed


def _abandoned(entry: Path) -> bool:
    """True when no living process holds the folder's owner lock."""
    try:
        fd = os.open(entry / _OWNER, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return True  # not a folder of ours, or one whose owner never got to lock it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def staging_folder(state_dir: Path, purpose: str) -> Iterator[Path]:
    """A new private folder (0700) under `<state_dir>/staging` for this process, removed on
    exit. The staging folders of dead processes are swept first."""
    sweep(state_dir)
    root = staging_root(state_dir)
    with _root_lock(root, fcntl.LOCK_SH):
        folder = Path(tempfile.mkdtemp(prefix=f"{purpose}-{os.getpid()}-", dir=root))
        owner = os.open(folder / _OWNER, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(owner, fcntl.LOCK_EX)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(owner)
