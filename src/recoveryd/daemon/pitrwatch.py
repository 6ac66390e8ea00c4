"""The daemon's watch over point-in-time recovery, every `PITR_INTERVAL` seconds:

- per point-in-time source, the recoverable window and the time the newest archived log
  file was stored, read from its targets, into the metrics (the archive lag is computed
  at scrape time);
- per PostgreSQL source with WAL archiving, the server's own archiver
  (`pg_stat_archiver`): one alert when its `archive_command` fails, when completed
  segments wait longer than the source's RPO, or when archive_mode is off without a WAL
  stream; one "recovery" alert when it archives again.

A source that cannot be read (its server or a store down) is logged and tried again at
the next turn; it never stops the watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from recoveryd.app.archiver import archiver_problem, archiver_status, archiving_sources
from recoveryd.app.walcheck import pitr_sources, recovery_window
from recoveryd.config import LoadedConfig, PostgresSource
from recoveryd.daemon.metrics import DaemonMetrics, PitrGauges
from recoveryd.daemon.notify import Alert
from recoveryd.errors import RecoverydError
from recoveryd.observe import get_logger
from recoveryd.secrets import redact

PITR_INTERVAL = 60.0
DEFAULT_ARCHIVE_LIMIT = 600.0  # how long completed segments may wait without an RPO

log = get_logger("recoveryd.daemon")


class PitrWatch:
    """Recovery windows into the metrics; alerts on the servers' archiving."""

    def __init__(
        self,
        cfg: LoadedConfig,
        metrics: DaemonMetrics,
        alert: Callable[[Alert], object],
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.alert = alert
        self.failing: dict[str, str] = {}  # source -> the problem alerted

    def run(self, stop: threading.Event, interval: float = PITR_INTERVAL) -> None:
        """Check now, then every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watch never stops the daemon
                log.warning("pitr_watch_failed", error=redact(str(exc)))
            stop.wait(interval)

    def check(self) -> None:
        """One turn: every window, then every archiver."""
        for source in pitr_sources(self.cfg):
            self.check_window(source)
        for source in archiving_sources(self.cfg):
            self.check_archiver(source)

    def check_window(self, source: str) -> None:
        try:
            window = recovery_window(self.cfg, source)
        except RecoverydError as exc:
            log.warning("pitr_window_unreadable", source=source, error=exc.message)
            return
        self.metrics.set_pitr(
            source,
            PitrGauges(start=window.start, end=window.end, newest=window.newest),
        )

    def check_archiver(self, source: str) -> None:
        settings = self.cfg.config.sources[source]
        if not isinstance(settings, PostgresSource):  # archiving_sources lists no other
            return
        try:
            status = archiver_status(self.cfg, source)
        except RecoverydError as exc:
            log.warning("archiver_unreadable", source=source, error=exc.message)
            return
        self.metrics.set_archiver(source, failed=status.failed_count, failing=status.failing)
        problem = archiver_problem(
            status, settings.rpo or DEFAULT_ARCHIVE_LIMIT, streamed=settings.wal.stream
        )
        if problem is not None and source not in self.failing:
            self.failing[source] = problem
            log.error("wal_archiving_failed", source=source, problem=problem)
            self.alert(
                Alert("failure", f"WAL archiving of {source} fails", problem, source=source,
                      details={"failed_count": status.failed_count,
                               "last_failed_wal": status.last_failed_wal,
                               "pending_segments": status.pending_segments})
            )  # fmt: skip
        elif problem is None and source in self.failing:
            del self.failing[source]
            self.alert(
                Alert("recovery", f"WAL archiving of {source} works again",
                      f"The server archived {status.last_archived_wal}.", source=source)
            )  # fmt: skip
