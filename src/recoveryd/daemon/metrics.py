"""Prometheus metrics and the health endpoint: `/metrics` and `/healthz` on `metrics.listen`.

The daemon updates a `DaemonMetrics` as jobs run; ages and overdue flags are
computed at scrape time from the last success times, so that a scrape always
sees the truth of the moment. `/healthz` answers 503, with the reasons, when a
source is overdue past its RPO or the scheduler loop is stuck.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from recoveryd.config import Metrics
from recoveryd.daemon.rpo import SourceRpo, age_seconds, is_overdue
from recoveryd.errors import ConfigError
from recoveryd.secrets import redact

LEVELS = {"normal": 0, "elevated": 1, "critical": 2}


@dataclass(frozen=True)
class Health:
    ok: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class PitrGauges:
    """The recovery window of a point-in-time source, as last read from its targets."""

    start: datetime | None  # end of the oldest base backup (dump)
    end: datetime | None  # newest recoverable moment
    newest: datetime | None  # when the newest archived log file was stored


class DaemonMetrics:
    """Every metric the daemon exports, in its own registry."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._sources: dict[str, SourceRpo] = {}
        self._copies: dict[tuple[str, str], datetime] = {}  # (source, target) -> newest
        self._pitr: dict[str, PitrGauges] = {}
        self._archivers: dict[str, tuple[int, bool]] = {}  # source -> (failed, failing)
        self._streams: dict[str, bool] = {}  # streamed source -> its tool runs
        r = self.registry
        self.bytes_read = Counter(
            "recoveryd_bytes_read", "Logical bytes read from sources", ["source"], registry=r
        )
        self.bytes_stored = Counter(
            "recoveryd_bytes_stored", "New bytes written to stores", ["source"], registry=r
        )
        self.duration = Histogram(
            "recoveryd_job_duration_seconds",
            "Duration of daemon jobs",
            ["kind"],
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
            registry=r,
        )
        self.jobs = Counter(
            "recoveryd_jobs", "Daemon jobs finished, by result", ["kind", "result"], registry=r
        )
        self.failures = Counter(
            "recoveryd_job_failures", "Failed daemon jobs", ["kind", "source"], registry=r
        )
        self.deferred = Counter(
            "recoveryd_jobs_deferred", "Jobs deferred by load shedding", ["kind"], registry=r
        )
        self.running = Gauge("recoveryd_running_jobs", "Jobs running now", registry=r)
        self.level = Gauge(
            "recoveryd_pressure_level", "Load level: 0 normal, 1 elevated, 2 critical", registry=r
        )
        self.notify_dropped = Counter(
            "recoveryd_notify_dropped", "Alerts dropped from a full spool", registry=r
        )
        self.heartbeat_age = Gauge(
            "recoveryd_scheduler_heartbeat_age_seconds",
            "Seconds since the scheduler loop last turned",
            registry=r,
        )
        self.fleet_runs = Counter(
            "recoveryd_fleet_runs",
            "Jobs this fleet member ran, by kind and member",
            ["kind", "member"],
            registry=r,
        )
        self.fleet_owned = Gauge(
            "recoveryd_fleet_owned_jobs", "Jobs this fleet member owns now", ["member"], registry=r
        )
        self.fleet_isolated = Gauge(
            "recoveryd_fleet_isolated",
            "1 while this fleet member is cut off from the coordination service",
            ["member"],
            registry=r,
        )
        self.fleet_fenced = Counter(
            "recoveryd_fleet_fenced_jobs",
            "Running jobs this fleet member stopped because its lease could run out",
            ["member"],
            registry=r,
        )
        r.register(_SourceCollector(self))
        r.register(_PitrCollector(self))

    def set_sources(self, sources: Mapping[str, SourceRpo]) -> None:
        with self._lock:
            self._sources = dict(sources)

    def record_success(self, source: str, at: datetime) -> None:
        with self._lock:
            old = self._sources.get(source)
            rpo = old.rpo_seconds if old else None
            self._sources[source] = SourceRpo(source, rpo, at)

    def sources(self) -> dict[str, SourceRpo]:
        with self._lock:
            return dict(self._sources)

    def record_copy(self, source: str, target: str, at: datetime) -> None:
        """A snapshot of `source` now exists on `target` (a backup or a replica copy)."""
        with self._lock:
            old = self._copies.get((source, target))
            if old is None or at > old:
                self._copies[(source, target)] = at

    def copies(self) -> dict[tuple[str, str], SourceRpo]:
        """(source, target) -> that target's newest snapshot of the source, with its RPO."""
        with self._lock:
            rpos = {n: s.rpo_seconds for n, s in self._sources.items()}
            return {
                (src, t): SourceRpo(src, rpos.get(src), at) for (src, t), at in self._copies.items()
            }

    def set_pitr(self, source: str, gauges: PitrGauges) -> None:
        with self._lock:
            self._pitr[source] = gauges

    def pitr(self) -> dict[str, PitrGauges]:
        with self._lock:
            return dict(self._pitr)

    def set_stream_up(self, source: str, up: bool) -> None:
        with self._lock:
            self._streams[source] = up

    def streams(self) -> dict[str, bool]:
        with self._lock:
            return dict(self._streams)

    def set_archiver(self, source: str, *, failed: int, failing: bool) -> None:
        """What the server of `source` reports of its archive_command (pg_stat_archiver)."""
        with self._lock:
            self._archivers[source] = (failed, failing)

    def archivers(self) -> dict[str, tuple[int, bool]]:
        with self._lock:
            return dict(self._archivers)

    def overdue(self) -> list[str]:
        now = self.clock()
        return sorted(n for n, s in self.sources().items() if is_overdue(s, now))


class _SourceCollector:
    """Per-source gauges computed at scrape time."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.m = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.m.clock()
        ts = GaugeMetricFamily(
            "recoveryd_last_success_timestamp_seconds",
            "Unix time of the newest complete snapshot",
            labels=["source"],
        )
        age = GaugeMetricFamily(
            "recoveryd_last_success_age_seconds",
            "Age of the newest complete snapshot",
            labels=["source"],
        )
        rpo = GaugeMetricFamily("recoveryd_rpo_seconds", "Declared RPO", labels=["source"])
        over = GaugeMetricFamily(
            "recoveryd_source_overdue", "1 when the source is past its RPO", labels=["source"]
        )
        count = 0
        for source, src in sorted(self.m.sources().items()):
            name = redact(source)  # label values pass the one redactor like every other text
            if src.last_snapshot is not None:
                ts.add_metric([name], src.last_snapshot.timestamp())
                age.add_metric([name], age_seconds(src.last_snapshot, now) or 0.0)
            if src.rpo_seconds is not None:
                rpo.add_metric([name], src.rpo_seconds)
            late = is_overdue(src, now)
            count += late
            over.add_metric([name], 1.0 if late else 0.0)
        yield ts
        yield age
        yield rpo
        yield over
        yield from self._per_target(now)
        yield GaugeMetricFamily("recoveryd_overdue_sources", "Sources past their RPO", value=count)

    def _per_target(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "recoveryd_target_last_success_age_seconds",
            "Age of the newest snapshot of the source on the target",
            labels=["source", "target"],
        )
        over = GaugeMetricFamily(
            "recoveryd_target_overdue",
            "1 when the target's newest snapshot of the source is past the RPO",
            labels=["source", "target"],
        )
        for (src, target), rpo in sorted(self.m.copies().items()):
            age.add_metric([src, target], age_seconds(rpo.last_snapshot, now) or 0.0)
            over.add_metric([src, target], 1.0 if is_overdue(rpo, now) else 0.0)
        yield age
        yield over


class _PitrCollector:
    """Per point-in-time source: the recovery window, the archive lag (at scrape time),
    whether its log stream runs, and its server's archiver."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.m = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.m.clock()
        start = GaugeMetricFamily(
            "recoveryd_pitr_window_start_timestamp_seconds",
            "Unix time of the oldest moment recoverable (end of the oldest base backup)",
            labels=["source"],
        )
        end = GaugeMetricFamily(
            "recoveryd_pitr_window_end_timestamp_seconds",
            "Unix time of the newest moment recoverable (newest archived log file)",
            labels=["source"],
        )
        lag = GaugeMetricFamily(
            "recoveryd_wal_archive_lag_seconds",
            "Seconds since the newest WAL segment (binary log) of the source was stored",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "recoveryd_wal_stream_up",
            "1 when the source's log stream (pg_receivewal, mariadb-binlog) runs",
            labels=["source"],
        )
        for source, g in sorted(self.m.pitr().items()):
            name = redact(source)
            if g.start is not None:
                start.add_metric([name], g.start.timestamp())
            if g.end is not None:
                end.add_metric([name], g.end.timestamp())
            if g.newest is not None:
                lag.add_metric([name], age_seconds(g.newest, now) or 0.0)
        for source, running in sorted(self.m.streams().items()):
            up.add_metric([redact(source)], 1.0 if running else 0.0)
        yield from (start, end, lag, up)
        yield from self._archivers()

    def _archivers(self) -> Iterator[GaugeMetricFamily]:
        failed = GaugeMetricFamily(
            "recoveryd_pg_archiver_failed_count",
            "pg_stat_archiver.failed_count of the source's server",
            labels=["source"],
        )
        failing = GaugeMetricFamily(
            "recoveryd_pg_archiver_failing",
            "1 when the server's last archive_command failed and none succeeded since",
            labels=["source"],
        )
        for source, (count, bad) in sorted(self.m.archivers().items()):
            failed.add_metric([redact(source)], count)
            failing.add_metric([redact(source)], 1.0 if bad else 0.0)
        yield failed
        yield failing


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:port`) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            f'"{listen}" is not host:port; write it like 127.0.0.1:9187', key="metrics.listen"
        )
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsServer:
    """A small threaded HTTP server for `/metrics` and `/healthz`."""

    def __init__(self, metrics: DaemonMetrics, health: Callable[[], Health], listen: str) -> None:
        host, port = parse_listen(listen)
        handler = _handler(metrics, health)
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {listen} ({exc.strerror}); choose a free address",
                key="metrics.listen",
            ) from exc
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 1.0},
            name="metrics",
            daemon=True,
        )

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(metrics: DaemonMetrics, health: Callable[[], Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            elif path == "/healthz":
                h = health()
                body = json.dumps({"ok": h.ok, "reasons": list(h.reasons)}).encode() + b"\n"
                self._send(200 if h.ok else 503, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found; try /metrics or /healthz\n")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes every few seconds are not worth a log line

    return Handler


def restart_server(
    server: MetricsServer | None,
    old: Metrics | None,
    new: Metrics | None,
    metrics: DaemonMetrics,
    health: Callable[[], Health],
) -> MetricsServer | None:
    """The metrics server after a reload: unchanged settings keep the running one."""
    if old == new:
        return server
    if server is not None:
        server.stop()
    if new is None:
        return None
    started = MetricsServer(metrics, health, new.listen)
    started.start()
    return started
