"""The daemon's files in `state_dir`: its lock (`daemon.lock`) and its status (`daemon.json`).

One daemon per state directory: the lock is an `flock` on `daemon.lock`
holding the pid. The kernel drops the lock when its process dies, so a stale
file left by a crash is simply taken over; a live daemon makes the next one
refuse to start (exit 5). `daemon.json` is rewritten atomically whenever the
daemon's activity changes, for `recoveryd status` to read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recoveryd.daemon.notify import write_json_atomic
from recoveryd.errors import RefusedError

LOCK_FILE = "daemon.lock"
STATUS_FILE = "daemon.json"


class DaemonLock:
    """The exclusive lock of a state directory, held for the daemon's lifetime."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None
        self.previous_pid: int | None = None

    def acquire(self) -> None:
        """Take the lock; RefusedError (exit 5) naming the pid when a live daemon holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"pid {pid}" if pid else "another process"
            raise RefusedError(
                f"daemon: {self.path} is held by a running daemon ({who}); "
                "one daemon per state_dir: stop it first or use another state_dir"
            ) from None
        self.previous_pid = _read_pid(fd)  # a crashed daemon's pid: its lock is taken over
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def running_daemon_pid(state_dir: Path) -> int | None:
    """The pid of the daemon holding `state_dir`'s lock, None when no daemon runs."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@dataclass
class StatusFile:
    """Writes `daemon.json` atomically; safe from several threads."""

    path: Path

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, document: dict[str, Any]) -> None:
        with self._lock:
            write_json_atomic(self.path, document)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The last `daemon.json` written, or None."""
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
        if isinstance(doc, dict):
            return doc
    return None
