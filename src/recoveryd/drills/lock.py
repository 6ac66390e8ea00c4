"""One drill per target system at a time: `state_dir/drills/locks/<name>` (flock).

The runner holds one lock per drill name and one per SSH host (`host-ADDRESS-PORT`)
its steps reach.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from recoveryd.config import Host
from recoveryd.drills.dryrun import hosts_of
from recoveryd.drills.models import Playbook, Step
from recoveryd.errors import RefusedError


def take_locks(
    state_dir: Path, run_id: str, book: Playbook, hosts: dict[str, Host]
) -> list[DrillLock]:
    """One drill per target system: the drill's own name, and every host its steps reach
    over SSH (so two different playbooks cannot fail over the same server at once)."""
    names = [book.name]
    for host in sorted(_referenced_hosts(book)):
        spec = hosts.get(host)
        if spec is not None:
            names.append(f"host-{spec.address}-{spec.port}".replace("/", "_"))
    held: list[DrillLock] = []
    try:
        for name in dict.fromkeys(names):
            lock = DrillLock(state_dir, name)
            lock.acquire(run_id)
            held.append(lock)
    except BaseException:
        for lock in reversed(held):
            lock.release()
        raise
    return held


def _referenced_hosts(book: Playbook) -> set[str]:
    found: set[str] = set()

    def walk(step: Step | None) -> None:
        if step is not None:
            found.update(hosts_of(step))
            walk(step.rollback)
            walk(step.only_if)

    for group in (book.preflight, book.steady_state, book.stop_conditions, book.steps):
        for step in group:
            walk(step)
    return found


class DrillLock:
    """Held for the whole run; released by `release()` or process exit."""

    def __init__(self, state_dir: Path, name: str) -> None:
        self.path = state_dir / "drills" / "locks" / name
        self._fd: int | None = None

    def acquire(self, run_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another run"
            os.close(fd)
            name = self.path.name
            what = f"a drill on {name[5:]}" if name.startswith("host-") else f"drill {name}"
            raise RefusedError(
                f"{what} is already running ({holder}); wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{run_id} pid {os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
