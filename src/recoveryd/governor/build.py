"""Build a Governor from the configuration (its `governor:` section)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from recoveryd.config import Governor as GovernorConfig
from recoveryd.config import LoadedConfig, MysqlSource, PostgresSource, Thresholds
from recoveryd.errors import ConfigError
from recoveryd.governor.core import Actions, EventSink, Governor, PlaybookRunner
from recoveryd.governor.decide import Band, Hold
from recoveryd.governor.signals import (
    CommandProbe,
    CommandSpec,
    CompositeSampler,
    HostSampler,
    HttpLatencyProbe,
    Sampler,
    sql_probe_spec,
)

HOST_SIGNALS = ("cpu", "memory", "load", "io_pressure", "cpu_pressure", "memory_pressure")


def bands_of(cfg: GovernorConfig) -> dict[str, Band]:
    """Signal name -> thresholds, for every configured signal."""
    sig = cfg.signals
    host: dict[str, Thresholds | None] = {
        "cpu": sig.cpu,
        "memory": sig.memory,
        "load": sig.load,
        "io_pressure": sig.io_pressure,
        "cpu_pressure": sig.cpu_pressure,
        "memory_pressure": sig.memory_pressure,
    }
    bands: dict[str, Band] = {}
    for name in HOST_SIGNALS:
        t = host[name]
        if t is not None:
            bands[name] = Band(t.elevated, t.critical, t.exit_ratio)
    if sig.service_latency is not None:
        t = sig.service_latency.p95_ms
        bands["service_latency"] = Band(t.elevated, t.critical, t.exit_ratio)
    if sig.db_connections is not None:
        t = sig.db_connections.active
        bands["db_connections"] = Band(t.elevated, t.critical, t.exit_ratio)
    if sig.command is not None:
        t = sig.command.value
        bands["command"] = Band(t.elevated, t.critical, t.exit_ratio)
    return bands


def _password(loaded: LoadedConfig, source: PostgresSource | MysqlSource) -> str | None:
    ref = source.password_file or source.password
    if ref is None:
        return None
    try:
        from recoveryd.secrets import resolve_secret
    except ImportError:  # pragma: no cover - the secrets module ships with the app layer
        if source.password_file is None:
            return None
        return loaded.resolve_path(source.password_file).read_text().rstrip("\n")
    return resolve_secret(ref, loaded.path.parent)


def build_governor(
    cfg: LoadedConfig,
    state: EventSink | None,
    run_playbook: PlaybookRunner | None,
    *,
    alert: Callable[[str, Mapping[str, Any]], None] | None = None,
    extra_samplers: tuple[Sampler, ...] = (),
) -> Governor:
    """A Governor for `cfg.config.governor` (not started: call `start()`).

    Playbook paths are resolved relative to the configuration file.
    Raises ConfigError when the configuration has no governor section.
    """
    gov = cfg.config.governor
    if gov is None:
        raise ConfigError("governor: not configured; add a governor section or run without it")
    probes: list[Any] = []
    samplers: list[Sampler] = [HostSampler(), *extra_samplers]
    sig = gov.signals
    if sig.service_latency is not None:
        http = sig.service_latency.http
        probes.append(
            HttpLatencyProbe(
                http.url, interval=gov.interval, timeout=http.timeout, window=http.window
            )
        )
    if sig.db_connections is not None:
        source = cfg.config.sources[sig.db_connections.source]
        if not isinstance(source, PostgresSource | MysqlSource):
            raise ConfigError(
                "governor: signals.db_connections.source must name a postgresql or mysql source"
            )
        spec = sql_probe_spec(source.kind, source.dsn, _password(cfg, source))
        probes.append(
            CommandProbe(("db_connections", "replication_lag_s"), spec, interval=gov.interval)
        )
    if sig.command is not None:
        spec = CommandSpec(sig.command.run, timeout=sig.command.timeout)
        probes.append(
            CommandProbe(
                ("command",),
                spec,
                interval=gov.interval,
                field=sig.command.field,
                counter=sig.command.counter,
            )
        )
    sampler = CompositeSampler([*samplers, *probes])
    actions = Actions(
        on_enter={
            "elevated": [cfg.resolve_path(p) for p in gov.on_enter.elevated],
            "critical": [cfg.resolve_path(p) for p in gov.on_enter.critical],
        },
        on_exit={
            "elevated": [cfg.resolve_path(p) for p in gov.on_exit.elevated],
            "critical": [cfg.resolve_path(p) for p in gov.on_exit.critical],
        },
    )
    return Governor(
        sampler.sample,
        bands_of(gov),
        hold=Hold(gov.hold.enter, gov.hold.exit),
        interval=gov.interval,
        events=state,
        run_playbook=run_playbook,
        actions=actions,
        max_pause=gov.max_pause,
        throttled_bandwidth=gov.throttled_bandwidth,
        alert=alert,
        probes=probes,
    )
