"""The daemon's log streams: one thread per source with `wal: {stream: true}`
(PostgreSQL, `pg_receivewal`) or `binlog: {stream: true}` (MariaDB/MySQL,
`mariadb-binlog`), each a `LogStreamer` (app/walstream.py) running until the daemon
stops. A stream that restarts or fails, and one whose last stored file is older than
the source's RPO (default 10 minutes), raises an alert once until it recovers.

With metrics, one more thread runs the point-in-time watch (daemon/pitrwatch.py): the
recovery windows and the servers' own archiving, for every point-in-time source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from recoveryd.app.walcheck import pitr_sources
from recoveryd.app.walstream import BinlogStreamer, LogStreamer, WalStreamer
from recoveryd.config import LoadedConfig, MysqlSource, PostgresSource
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Alert
from recoveryd.daemon.pitrwatch import PitrWatch

DEFAULT_LAG_ALERT = 600.0


def streamed_sources(cfg: LoadedConfig) -> dict[str, type[LogStreamer]]:
    """The sources whose logs the daemon streams, with their streamer."""
    out: dict[str, type[LogStreamer]] = {}
    for name, src in cfg.config.sources.items():
        if isinstance(src, PostgresSource) and src.wal.stream:
            out[name] = WalStreamer
        elif isinstance(src, MysqlSource) and src.binlog.stream:
            out[name] = BinlogStreamer
    return out


class StreamSupervisor:
    """Starts, watches and stops the daemon's log streams."""

    def __init__(
        self,
        cfg: LoadedConfig,
        alert: Callable[[Alert], object],
        metrics: DaemonMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.alert = alert
        self.metrics = metrics
        self.watch = None if metrics is None else PitrWatch(cfg, metrics, alert)
        self.stop = threading.Event()
        self.streamers: dict[str, LogStreamer] = {}
        self.threads: list[threading.Thread] = []
        self._lagging: set[str] = set()
        self._started = time.time()

    def start(self) -> None:
        for name, kind in streamed_sources(self.cfg).items():
            streamer = kind(self.cfg, name, on_event=self._event)
            self.streamers[name] = streamer
            thread = threading.Thread(
                target=streamer.run, args=(self.stop,), name=f"stream-{name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        if self.watch is not None and pitr_sources(self.cfg):
            watch = threading.Thread(
                target=self.watch.run, args=(self.stop,), name="pitr-watch", daemon=True
            )
            watch.start()
            self.threads.append(watch)

    def up(self, name: str) -> bool | None:
        """Whether the log stream of `name` runs now; None when `name` is not streamed."""
        streamer = self.streamers.get(name)
        return None if streamer is None else streamer.state.running

    def close(self, timeout: float = 30.0) -> None:
        """Stop every stream; what each spool holds is stored before it returns."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)

    def lag_seconds(self, name: str) -> float:
        """Seconds since the stream of `name` last stored something (since start when never)."""
        last = self.streamers[name].state.last_push_time
        return time.time() - (last if last is not None else self._started)

    def check(self) -> None:
        """Alert once per stream that stored nothing for longer than its source's RPO;
        whether each stream runs into the metrics."""
        for name in self.streamers:
            if self.metrics is not None:
                self.metrics.set_stream_up(name, bool(self.up(name)))
            limit = self.cfg.config.sources[name].rpo or DEFAULT_LAG_ALERT
            lag = self.lag_seconds(name)
            if lag > limit and name not in self._lagging:
                self._lagging.add(name)
                self.alert(
                    Alert("failure", f"the log stream of {name} is behind",
                          f"Nothing streamed from {name} was stored for {lag:.0f}s "
                          f"(limit {limit:g}s).", source=name)
                )  # fmt: skip
            elif lag <= limit and name in self._lagging:
                self._lagging.discard(name)
                self.alert(
                    Alert("recovery", f"the log stream of {name} caught up", "", source=name)
                )

    def _event(self, kind: str, data: dict[str, object]) -> None:
        source = str(data.get("source", ""))
        if kind.endswith("_failed"):
            self.alert(
                Alert("failure", f"the log stream of {source} failed", str(data.get("error")),
                      source=source, details=dict(data))
            )  # fmt: skip
