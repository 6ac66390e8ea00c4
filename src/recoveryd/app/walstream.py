"""Streaming WAL archiving (`wal: {stream: true}`, `recoveryd wal-stream SOURCE`): an RPO
of seconds instead of a segment.

`pg_receivewal` streams from a replication slot of the source (so the server keeps the
WAL until it has been received) into a private spool folder under the state directory,
flushing every write. The streamer pushes each completed segment into every target of
the source, exactly like `wal-push` (the same objects, so both ways can run together),
and deletes it from the spool only then; the segment being written is pushed as
`<segment>.partial` every `partial_interval`, replacing the previous part, so a
recovery can replay up to the last few seconds (`wal-get` falls back to the partial
segment). When `pg_receivewal` ends (the server restarted, the network dropped) it is
started again after a pause that grows up to a minute, and `on_event` is told.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recoveryd.app import wiring
from recoveryd.config import LoadedConfig, PostgresSource
from recoveryd.errors import RecoverydError, UsageError
from recoveryd.repo.wal import SEGMENT, WalArchive
from recoveryd.sources.base import Process
from recoveryd.sources.postgresql import PostgresSource as PostgresAdapter

PARTIAL_SUFFIX = ".partial"
EventSink = Callable[[str, dict[str, object]], None]


@dataclass
class StreamState:
    """What the streamer has done so far (for status and tests)."""

    segments_pushed: int = 0
    partials_pushed: int = 0
    restarts: int = 0
    last_pushed: str | None = None
    last_push_time: float | None = None
    last_error: str | None = None


class WalStreamer:
    """Streams one PostgreSQL source's WAL into its targets until `stop` is set."""

    def __init__(
        self,
        cfg: LoadedConfig,
        source: str,
        *,
        partial_interval: float = 1.0,
        poll: float = 0.2,
        on_event: EventSink | None = None,
    ) -> None:
        settings = cfg.config.sources.get(source)
        wiring.source_names(cfg, [source])
        if not isinstance(settings, PostgresSource):
            raise UsageError(f"sources.{source}: WAL streaming is for postgresql sources")
        self.cfg = cfg
        self.source = source
        self.targets = list(settings.targets)
        self.slot = f"recoveryd_{source}".replace("-", "_").replace(".", "_").lower()
        self.spool = cfg.resolve_path(cfg.config.state_dir) / "wal-stream" / source
        self.partial_interval = partial_interval
        self.poll = poll
        self.on_event = on_event or (lambda kind, data: None)
        self.state = StreamState()
        self._partial_seen: tuple[str, int, float] | None = None
        self._archives: list[WalArchive] = []

    def archives(self) -> list[WalArchive]:
        """The source's WAL archive in each target, opened once and kept open."""
        if not self._archives:
            for target in self.targets:
                repo = wiring.open_repository(self.cfg, target)
                self._archives.append(WalArchive(repo, self.source))
        return self._archives

    def close(self) -> None:
        for archive in self._archives:
            with contextlib.suppress(Exception):
                archive.repo.store.close()
        self._archives = []

    def run(self, stop: threading.Event) -> StreamState:
        """Stream until `stop` is set; what is complete in the spool is pushed before
        returning."""
        self.spool.mkdir(parents=True, exist_ok=True)
        self.spool.chmod(0o700)
        pause = 1.0
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._stream_once(stop)
            except RecoverydError as exc:  # the store or the server: retried after a pause
                self.state.last_error = exc.message
                self.on_event("wal_stream_failed", {"source": self.source, "error": exc.message})
            if stop.is_set():
                break
            self.state.restarts += 1
            pause = 1.0 if time.monotonic() - started > 60 else min(pause * 2, 60.0)
            self.on_event("wal_stream_restart", {"source": self.source, "pause_s": pause})
            stop.wait(pause)
        try:
            self.push_ready(final=True)
        finally:
            self.close()
        return self.state

    def _stream_once(self, stop: threading.Event) -> None:
        from recoveryd.app.sourcebuild import build

        settings = self.cfg.config.sources[self.source]
        source = build(self.source, settings, base_dir=self.cfg.path.parent, runner=None)
        if not isinstance(source, PostgresAdapter):  # settings are a PostgresSource
            raise UsageError(f"sources.{self.source}: WAL streaming is for postgresql sources")
        proc, passfile = source.receive_wal(self.spool, self.slot)
        try:
            while not stop.is_set() and _running(proc):
                self.push_ready()
                stop.wait(self.poll)
        finally:
            with contextlib.suppress(Exception):
                proc.kill()
            if passfile is not None:
                passfile.remove()
        if not stop.is_set():
            raise RecoverydError(
                f"source {self.source}: pg_receivewal ended: {proc.stderr_text()[-500:]}"
            )

    def push_ready(self, *, final: bool = False) -> None:
        """Push every completed segment (then delete it from the spool) and, when due or
        `final`, the segment being written as a partial one."""
        for path in sorted(self.spool.iterdir()):
            if SEGMENT.match(path.name) or path.name.endswith(".history"):
                self._push(path)
        partials = sorted(p for p in self.spool.iterdir() if p.name.endswith(PARTIAL_SUFFIX))
        if partials:
            self._push_partial(partials[-1], force=final)

    def _push(self, path: Path) -> None:
        data = path.read_bytes()
        self._each(lambda archive: archive.push(path.name, data))
        path.unlink()
        self.state.segments_pushed += 1
        self.state.last_pushed = path.name
        self.state.last_push_time = time.time()

    def _push_partial(self, path: Path, *, force: bool) -> None:
        segment = path.name[: -len(PARTIAL_SUFFIX)]
        st = path.stat()
        now = time.monotonic()
        seen = self._partial_seen
        if seen is not None and seen[:2] == (segment, st.st_mtime_ns):
            return  # unchanged since the last push
        if not force and seen is not None and now - seen[2] < self.partial_interval:
            return
        data = path.read_bytes()
        self._each(lambda archive: archive.put_partial(segment, data))
        self._partial_seen = (segment, st.st_mtime_ns, now)
        self.state.partials_pushed += 1
        self.state.last_push_time = time.time()

    def _each(self, push: Callable[[WalArchive], object]) -> None:
        """`push` into every target; on a failure the archives are reopened next time."""
        try:
            for archive in self.archives():
                push(archive)
        except BaseException:
            self.close()
            raise


def _running(proc: Process) -> bool:
    try:
        proc.wait(0)
    except TimeoutError:
        return True
    return False
