"""Streaming log archiving: an RPO of seconds instead of a segment or a dump.

- PostgreSQL (`recoveryd wal-stream SOURCE`): `pg_receivewal` streams from a
  replication slot of the source (the server keeps the WAL until it was received),
  flushing every write; completed segments are archived exactly like `wal-push` does
  (the same objects, so both ways can run together).
- MariaDB/MySQL (`recoveryd binlog-stream SOURCE`): `mariadb-binlog
  --read-from-remote-server --raw --stop-never` copies the server's binary logs as they
  are written, from the binlog of the newest dump (else the oldest the server has);
  every log but the newest is complete and archived as `binlog/<source>/<file>`.

Both write into a private spool folder under the state directory (0700), delete a file
from it only once it is stored in every target of the source, and store the file being
written every `partial_interval` as `<file>.partial`, replacing the previous part, so a
recovery can replay up to the last seconds. When the tool ends (the server restarted,
the network dropped) it is started again after a pause that grows up to a minute, and
`on_event` is told.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recoveryd.app import wiring
from recoveryd.config import LoadedConfig, MysqlSource, PostgresSource
from recoveryd.errors import RecoverydError, UsageError
from recoveryd.repo.wal import BINLOG_FILE, SEGMENT, BinlogArchive, WalArchive, binlog_order
from recoveryd.sources.base import Process
from recoveryd.sources.mysql import MysqlSource as MysqlAdapter
from recoveryd.sources.postgresql import PostgresSource as PostgresAdapter
from recoveryd.sources.procstream import SecretFile

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
    running: bool = False  # the streaming tool runs now


class LogStreamer:
    """Streams one source's log into its targets until `stop` is set."""

    kind = ""
    archive_class: type[WalArchive] = WalArchive
    settings_class: type[PostgresSource | MysqlSource] = PostgresSource
    source_kind = "postgresql"

    def __init__(
        self,
        cfg: LoadedConfig,
        source: str,
        *,
        partial_interval: float = 1.0,
        poll: float = 0.2,
        on_event: EventSink | None = None,
    ) -> None:
        wiring.source_names(cfg, [source])
        if not isinstance(cfg.config.sources[source], self.settings_class):
            raise UsageError(
                f"sources.{source}: {self.kind} streaming is for {self.source_kind} sources"
            )
        self.cfg = cfg
        self.source = source
        self.targets = list(cfg.config.sources[source].targets)
        self.spool = cfg.resolve_path(cfg.config.state_dir) / f"{self.kind}-stream" / source
        self.partial_interval = partial_interval
        self.poll = poll
        self.on_event = on_event or (lambda kind, data: None)
        self.state = StreamState()
        self._partial_seen: tuple[str, int, float] | None = None
        self._archives: list[WalArchive] = []

    # -- what differs between PostgreSQL and MariaDB ---------------------------

    def start(self) -> tuple[Process, SecretFile | None]:
        """Start the streaming tool writing into `self.spool`."""
        raise NotImplementedError

    def completed_and_current(self, names: list[str]) -> tuple[list[str], str | None]:
        """Of the spool's file names: the complete ones, and the one being written."""
        raise NotImplementedError

    def current_name(self, file_name: str) -> str:
        """The archive name of the file being written (without `.partial`)."""
        return file_name

    # -- the loop --------------------------------------------------------------

    def archives(self) -> list[WalArchive]:
        """The source's archive in each target, opened once and kept open."""
        if not self._archives:
            for target in self.targets:
                repo = wiring.open_repository(self.cfg, target)
                self._archives.append(self.archive_class(repo, self.source))
        return self._archives

    def close(self) -> None:
        for archive in self._archives:
            with contextlib.suppress(Exception):
                archive.repo.store.close()
        self._archives = []

    def run(self, stop: threading.Event) -> StreamState:
        """Stream until `stop` is set; what the spool holds is pushed before returning."""
        self.spool.mkdir(parents=True, exist_ok=True)
        self.spool.chmod(0o700)
        pause = 1.0
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._stream_once(stop)
            except RecoverydError as exc:  # the store or the server: retried after a pause
                self.state.last_error = exc.message
                self.on_event(
                    f"{self.kind}_stream_failed", {"source": self.source, "error": exc.message}
                )
            if stop.is_set():
                break
            self.state.restarts += 1
            pause = 1.0 if time.monotonic() - started > 60 else min(pause * 2, 60.0)
            self.on_event(f"{self.kind}_stream_restart", {"source": self.source, "pause_s": pause})
            stop.wait(pause)
        try:
            self.push_ready(final=True)
        finally:
            self.close()
        return self.state

    def _stream_once(self, stop: threading.Event) -> None:
        proc, secret_file = self.start()
        try:
            while not stop.is_set() and _running(proc):
                self.state.running = True
                self.push_ready()
                stop.wait(self.poll)
        finally:
            self.state.running = False
            with contextlib.suppress(Exception):
                proc.kill()
            if secret_file is not None:
                secret_file.remove()
        if not stop.is_set():
            raise RecoverydError(
                f"source {self.source}: the {self.kind} stream ended: {proc.stderr_text()[-500:]}"
            )

    def push_ready(self, *, final: bool = False) -> None:
        """Push every completed file (then delete it from the spool) and, when due or
        `final`, the file being written as a partial one."""
        complete, current = self.completed_and_current(sorted(p.name for p in self.spool.iterdir()))
        for name in complete:
            self._push(self.spool / name)
        if current is not None:
            self._push_partial(self.spool / current, force=final)

    def _push(self, path: Path) -> None:
        data = path.read_bytes()
        self._each(lambda archive: archive.push(path.name, data))
        path.unlink()
        self.state.segments_pushed += 1
        self.state.last_pushed = path.name
        self.state.last_push_time = time.time()

    def _push_partial(self, path: Path, *, force: bool) -> None:
        name = self.current_name(path.name)
        st = path.stat()
        now = time.monotonic()
        seen = self._partial_seen
        if seen is not None and seen[:2] == (name, st.st_mtime_ns):
            return  # unchanged since the last push
        if not force and seen is not None and now - seen[2] < self.partial_interval:
            return
        data = path.read_bytes()
        self._each(lambda archive: archive.put_partial(name, data))
        self._partial_seen = (name, st.st_mtime_ns, now)
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


class WalStreamer(LogStreamer):
    """PostgreSQL: `pg_receivewal` on the replication slot `recoveryd_<source>`."""

    kind = "wal"

    @property
    def slot(self) -> str:
        return f"recoveryd_{self.source}".replace("-", "_").replace(".", "_").lower()

    def start(self) -> tuple[Process, SecretFile | None]:
        source = _adapter(self.cfg, self.source)
        if not isinstance(source, PostgresAdapter):
            raise UsageError(f"sources.{self.source}: WAL streaming is for postgresql sources")
        return source.receive_wal(self.spool, self.slot)

    def completed_and_current(self, names: list[str]) -> tuple[list[str], str | None]:
        complete = [n for n in names if SEGMENT.match(n) or n.endswith(".history")]
        partials = [n for n in names if n.endswith(PARTIAL_SUFFIX)]
        return complete, (partials[-1] if partials else None)

    def current_name(self, file_name: str) -> str:
        return file_name.removesuffix(PARTIAL_SUFFIX)


class BinlogStreamer(LogStreamer):
    """MariaDB/MySQL: `mariadb-binlog --read-from-remote-server --raw --stop-never`."""

    kind = "binlog"
    archive_class = BinlogArchive
    settings_class = MysqlSource
    source_kind = "mysql"

    def start(self) -> tuple[Process, SecretFile | None]:
        source = _adapter(self.cfg, self.source)
        if not isinstance(source, MysqlAdapter):
            raise UsageError(f"sources.{self.source}: binlog streaming is for mysql sources")
        return source.read_binlogs(self.spool, self._first_binlog())

    def _first_binlog(self) -> str | None:
        """Where to start: the newest file already in the spool or the archive, so a
        restart re-reads only the log being written; None: the oldest on the server."""
        local = [n for n in (p.name for p in self.spool.iterdir()) if BINLOG_FILE.match(n)]
        names = [n.removesuffix(PARTIAL_SUFFIX) for n in [*local, *self.archives()[0].names()]]
        return max(names, key=binlog_order) if names else None

    def completed_and_current(self, names: list[str]) -> tuple[list[str], str | None]:
        logs = sorted((n for n in names if BINLOG_FILE.match(n)), key=binlog_order)
        return logs[:-1], (logs[-1] if logs else None)


def _adapter(cfg: LoadedConfig, name: str) -> object:
    """The source adapter, its tools run on this host (a stream connects over the
    network, and the spool is local)."""
    from recoveryd.app.wiring import make_source

    settings = cfg.config.sources[name]
    return make_source(name, settings, base_dir=cfg.path.parent, runner=None)


def _running(proc: Process) -> bool:
    try:
        proc.wait(0)
    except TimeoutError:
        return True
    return False
