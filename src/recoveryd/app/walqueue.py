"""Asynchronous WAL archiving: `wal-push SOURCE %p --spool DIR`.

PostgreSQL calls `archive_command` for one segment at a time and waits for it; a busy
server can fill segments faster than one process per segment archives them. With
`--spool DIR` (like pgBackRest's asynchronous archive-push) a worker process per source
(`DIR/<source>/worker.lock`) archives the segments PostgreSQL has marked ready
(`pg_wal/archive_status/*.ready`), oldest first, `jobs` at a time, with the product
loaded once and the repositories kept open. When a segment is stored durably in every
target of the source, the worker writes `DIR/<source>/<segment>.ok` (fsync'd), holding
the SHA-256 of what it stored; the `archive_command` call for that segment finds it,
checks that the file PostgreSQL hands over has that digest, removes it and answers 0 —
before loading anything else (`cli/walfast.py`). An acknowledgement of other content
(a cluster recreated under the same name) is never taken for this file. A failure is
written as `<segment>.error` and reported by that call (exit 1, PostgreSQL retries).
An acknowledgement is only ever written after the segment is stored: nothing
acknowledged lives only in memory.
The worker exits after `idle` seconds without work; the next call starts it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recoveryd.app import wiring
from recoveryd.config import LoadedConfig
from recoveryd.errors import RecoverydError
from recoveryd.repo.wal import WAL_FILE, WalArchive

STALE_ACK = 600.0
"""An acknowledgement nobody asked for within this many seconds is removed."""


class WalQueue:
    """The spool of one source: acknowledgements, errors and the worker's lock."""

    def __init__(self, cfg: LoadedConfig, source: str, spool: Path) -> None:
        self.cfg = cfg
        self.source = source
        self.dir = spool / source
        self.dir.mkdir(parents=True, exist_ok=True)

    def take_ack(self, path: Path) -> bool:
        """Consume the acknowledgement of `path` when it holds that file's digest (one
        of other content is removed and does not count)."""
        ack = self.dir / f"{path.name}.ok"
        try:
            digest = ack.read_text(encoding="ascii", errors="replace").strip()
        except FileNotFoundError:
            return False
        ack.unlink(missing_ok=True)
        return digest == file_digest(path)

    def take_error(self, name: str) -> str | None:
        path = self.dir / f"{name}.error"
        try:
            message = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        return message.strip() or "the archive worker failed"

    def wait_for(self, name: str, timeout: float) -> bool | None:
        """True once acknowledged, False on an error report, None after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.dir / f"{name}.ok").exists():
                return True
            if (self.dir / f"{name}.error").exists():
                return False
            time.sleep(0.05)
        return None

    def ensure_worker(self, segment: Path) -> None:
        """Start the worker for this source unless one holds its lock."""
        with self._lock(blocking=False) as held:
            if not held:
                return
        log = (self.dir / "worker.log").open("ab")
        subprocess.Popen(
            [
                *(sys.executable, "-m", "recoveryd", "--config", str(self.cfg.path.absolute())),
                *("wal-push", self.source, str(segment.absolute())),
                *("--spool", str(self.dir.parent), "--worker"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    @contextlib.contextmanager
    def _lock(self, *, blocking: bool) -> Iterator[bool]:
        fd = os.open(self.dir / "worker.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def run_worker(self, pg_wal: Path, *, jobs: int = 4, idle: float = 10.0) -> int:
        """Archive ready segments until there has been nothing to do for `idle` seconds;
        returns how many were archived. Exits at once when another worker runs."""
        with self._lock(blocking=False) as held:
            if not held:
                return 0
            archives = [
                WalArchive(wiring.open_repository(self.cfg, t), self.source)
                for t in self.cfg.config.sources[self.source].targets
            ]
            done = 0
            acked: set[str] = set()  # acknowledged while PostgreSQL still marks them ready
            last_work = time.monotonic()
            try:
                with ThreadPoolExecutor(max_workers=jobs) as pool:
                    while time.monotonic() - last_work < idle:
                        ready = self._ready(pg_wal)
                        acked &= set(ready)  # PostgreSQL has marked the others done
                        todo = [n for n in ready if n not in acked and self._unanswered(n)]
                        if not todo:
                            self._forget_stale(pg_wal)
                            time.sleep(0.1)
                            continue
                        for name in pool.map(
                            lambda n: self._archive(archives, pg_wal / n), todo[: jobs * 2]
                        ):
                            if name is not None:
                                acked.add(name)
                                done += 1
                        last_work = time.monotonic()
            finally:
                for archive in archives:
                    with contextlib.suppress(Exception):
                        archive.repo.store.close()
            return done

    def _ready(self, pg_wal: Path) -> list[str]:
        status = pg_wal / "archive_status"
        names = sorted(p.name[: -len(".ready")] for p in status.glob("*.ready"))
        return [n for n in names if WAL_FILE.match(n)]

    def _unanswered(self, name: str) -> bool:
        """Neither acknowledged nor reported failed (and not yet consumed)."""
        return not (self.dir / f"{name}.ok").exists() and not (self.dir / f"{name}.error").exists()

    def _archive(self, archives: list[WalArchive], path: Path) -> str | None:
        try:
            data = path.read_bytes()
            for archive in archives:
                archive.push(path.name, data)
        except (RecoverydError, OSError) as exc:
            _write_durably(self.dir / f"{path.name}.error", str(exc).encode())
            return None
        _write_durably(self.dir / f"{path.name}.ok", hashlib.sha256(data).hexdigest().encode())
        return path.name

    def _forget_stale(self, pg_wal: Path) -> None:
        """Acknowledgements PostgreSQL will never ask for (it archived the segment itself
        meanwhile) go after a while."""
        ready = {p.name[: -len(".ready")] for p in (pg_wal / "archive_status").glob("*.ready")}
        now = time.time()
        for ack in self.dir.glob("*.ok"):
            name = ack.name[: -len(".ok")]
            with contextlib.suppress(OSError):
                if name not in ready and now - ack.stat().st_mtime > STALE_ACK:
                    ack.unlink()


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: Path) -> str:
    """SHA-256 of a file, hex (as the acknowledgements hold it)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
