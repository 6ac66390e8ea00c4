"""Signals the governor samples: the host (psutil, PSI) and probes of the protected service.

Every sampler returns plain readings, `{name: float}`; names match the keys of
`governor.signals` in the configuration (`cpu`, `memory`, `load`,
`io_pressure`, `cpu_pressure`, `memory_pressure`, `service_latency`,
`db_connections`, `command`), plus informative extras (`disk_read_bps`,
`service_latency_p99`, ...). Sampling is cheap: the host sampler only reads
counters, and probes that wait on the network or a subprocess run in their
own thread and are read from their last result, never blocking the tick.

psutil lives only here.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil
import structlog

log = structlog.get_logger("recoveryd.governor")

Readings = Mapping[str, float]


class Sampler(Protocol):
    def sample(self) -> Readings: ...


class Probe(Protocol):
    """A sampler with a background thread."""

    def sample(self) -> Readings: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def read_psi(path: Path) -> dict[str, float] | None:
    """`some`/`full` avg10 of one /proc/pressure file; None when the kernel has no PSI."""
    try:
        text = path.read_text()
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        fields = dict(f.split("=", 1) for f in rest.split() if "=" in f)
        if "avg10" in fields:
            out[kind] = float(fields["avg10"])
    return out


class HostSampler:
    """CPU, memory, load per core, disk and network byte rates, and PSI where present."""

    def __init__(
        self,
        *,
        psi_dir: Path = Path("/proc/pressure"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._psi_dir = psi_dir
        self._clock = clock
        self._cores = psutil.cpu_count() or 1
        self._psi_noted = False
        psutil.cpu_percent(interval=None)  # primes the counter: the next call measures since now
        self._last = (clock(), _disk_bytes(), _net_bytes())

    def sample(self) -> Readings:
        now = self._clock()
        disk, net = _disk_bytes(), _net_bytes()
        then, disk0, net0 = self._last
        self._last = (now, disk, net)
        dt = max(now - then, 1e-6)
        readings: dict[str, float] = {
            "cpu": psutil.cpu_percent(interval=None),
            "memory": psutil.virtual_memory().percent,
            "load": os.getloadavg()[0] / self._cores * 100.0,
            "disk_bps": max(0.0, (disk - disk0) / dt),
            "net_bps": max(0.0, (net - net0) / dt),
        }
        readings.update(self._psi())
        return readings

    def _psi(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for resource in ("cpu", "io", "memory"):
            psi = read_psi(self._psi_dir / resource)
            if psi is None:
                if not self._psi_noted:
                    log.info("psi_unavailable", path=str(self._psi_dir), note="PSI signals ignored")
                    self._psi_noted = True
                return {}
            if "some" in psi:
                out[f"{resource}_pressure"] = psi["some"]
            if "full" in psi:
                out[f"{resource}_pressure_full"] = psi["full"]
        return out


def _disk_bytes() -> float:
    io = psutil.disk_io_counters()
    return float(io.read_bytes + io.write_bytes) if io else 0.0


def _net_bytes() -> float:
    io = psutil.net_io_counters()
    return float(io.bytes_sent + io.bytes_recv) if io else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 < q <= 100)."""
    if not sorted_values:
        return float("nan")
    index = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[index]


class LatencyWindow:
    """Latencies over a sliding time window; failures count at the probe timeout."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._items: deque[tuple[float, float, bool]] = deque()
        self._lock = threading.Lock()

    def add(self, latency_ms: float, ok: bool) -> None:
        with self._lock:
            self._items.append((self._clock(), latency_ms, ok))
            self._trim()

    def _trim(self) -> None:
        horizon = self._clock() - self.window
        while self._items and self._items[0][0] < horizon:
            self._items.popleft()

    def stats(self, name: str) -> dict[str, float]:
        with self._lock:
            self._trim()
            items = list(self._items)
        if not items:
            return {}
        values = sorted(i[1] for i in items)
        errors = sum(1 for i in items if not i[2])
        return {
            name: percentile(values, 95),
            f"{name}_p50": percentile(values, 50),
            f"{name}_p99": percentile(values, 99),
            f"{name}_error_rate": errors / len(items),
        }


class _ThreadedProbe:
    """Runs `measure` every `interval` in a daemon thread."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=type(self).__name__, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.measure()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def measure(self) -> None:
        raise NotImplementedError


class HttpLatencyProbe(_ThreadedProbe):
    """GETs `url` every interval; readings: `service_latency` (p95 ms), p50, p99, error rate."""

    def __init__(
        self, url: str, *, interval: float = 1.0, timeout: float = 2.0, window: float = 10.0
    ) -> None:
        super().__init__(interval)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"probe URL {url!r} must be http:// or https://")
        self.url = url
        self.timeout = timeout
        self.window = LatencyWindow(window)

    def measure(self) -> None:
        started = time.monotonic()
        ok = True
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as resp:  # noqa: S310 - scheme checked
                resp.read()
                ok = resp.status < 500
        except urllib.error.HTTPError as exc:
            ok = exc.code < 500
        except OSError:
            ok = False
        elapsed = (time.monotonic() - started) * 1000.0
        self.window.add(elapsed if ok else max(elapsed, self.timeout * 1000.0), ok)

    def sample(self) -> Readings:
        return self.window.stats("service_latency")


@dataclass(frozen=True)
class CommandSpec:
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    timeout: float = 5.0


class CommandProbe(_ThreadedProbe):
    """Runs a command every interval; the numbers it prints become readings named by `names`.

    A failing command (an overloaded service timing out, say) keeps its last readings for
    `stale_after` seconds, so a probe failing under pressure is not mistaken for calm;
    after that it reports nothing (the signal is ignored). Failures are logged once per run.
    """

    def __init__(
        self,
        names: Sequence[str],
        spec: CommandSpec,
        *,
        interval: float = 1.0,
        stale_after: float = 10.0,
        field: int = 0,
        counter: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval)
        self.names = tuple(names)
        self.name = self.names[0]
        self.spec = spec
        self.stale_after = stale_after
        self.field = field
        self.counter = counter
        self._previous: tuple[float, float] | None = None  # (time, count) for counters
        self._clock = clock
        self._last: dict[str, float] = {}
        self._last_at = 0.0
        self._failing = False

    def measure(self) -> None:
        env = {**os.environ, **self.spec.env} if self.spec.env else None
        try:
            done = subprocess.run(
                list(self.spec.argv),
                capture_output=True,
                timeout=self.spec.timeout,
                env=env,
                check=False,
            )
            if done.returncode != 0:
                raise OSError(done.stderr.decode(errors="replace").strip()[:200])
            values = [float(x) for x in done.stdout.decode().split() if _is_number(x)]
        except (OSError, subprocess.TimeoutExpired) as exc:
            if not self._failing:
                log.warning("probe_failed", probe=self.name, error=str(exc) or type(exc).__name__)
            self._failing = True
            return
        self._failing = False
        now = self._clock()
        values = values[self.field :]
        if self.counter:
            values = self._rate(now, values[0]) if values else []
        if values:
            self._last = dict(zip(self.names, values, strict=False))
            self._last_at = now

    def _rate(self, now: float, count: float) -> list[float]:
        """Per-second rate of a growing count; nothing on the first sample or a reset."""
        previous, self._previous = self._previous, (now, count)
        if previous is None or count < previous[1] or now <= previous[0]:
            return []
        return [(count - previous[1]) / (now - previous[0])]

    def sample(self) -> Readings:
        if self._clock() - self._last_at > self.stale_after:
            return {}
        return dict(self._last)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


PG_ACTIVE_SQL = (
    "select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid();"
    " select coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0)"
)
MYSQL_ACTIVE_SQL = (
    "select count(*) from information_schema.processlist where command not in ('Sleep', 'Daemon')"
)


def sql_probe_spec(kind: str, dsn: str, password: str | None) -> CommandSpec:
    """The client command that prints active connections (and, for PostgreSQL, replay lag in s).

    The password travels in the environment of the client, never on its command line.
    """
    if kind == "postgresql":
        env = {"PGPASSWORD": password} if password else None
        return CommandSpec(["psql", "-X", "-At", "-d", dsn, "-c", PG_ACTIVE_SQL], env)
    if kind == "mysql":
        from urllib.parse import urlsplit

        url = urlsplit(dsn)
        argv = ["mysql", "-N", "-B", "-h", url.hostname or "127.0.0.1"]
        if url.port:
            argv += ["-P", str(url.port)]
        if url.username:
            argv += ["-u", url.username]
        argv += ["-e", MYSQL_ACTIVE_SQL]
        return CommandSpec(argv, {"MYSQL_PWD": password} if password else None)
    raise ValueError(f"no SQL probe for {kind} sources")


class CompositeSampler:
    """The union of several samplers' readings; a failing sampler is logged, not fatal."""

    def __init__(self, samplers: Sequence[Sampler]) -> None:
        self.samplers = list(samplers)

    def sample(self) -> Readings:
        out: dict[str, float] = {}
        for sampler in self.samplers:
            try:
                out.update(sampler.sample())
            except (OSError, ValueError, RuntimeError) as exc:
                log.warning("sampler_failed", sampler=type(sampler).__name__, error=str(exc))
        return out
