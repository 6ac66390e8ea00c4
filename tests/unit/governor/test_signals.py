"""Signals: PSI parsing, latency percentiles over a window, host sampling, probes, config."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from recoveryd.config import load_config
from recoveryd.governor import build_governor
from recoveryd.governor.signals import (
    CommandProbe,
    CommandSpec,
    HostSampler,
    HttpLatencyProbe,
    LatencyWindow,
    percentile,
    read_psi,
    sql_probe_spec,
)
from recoveryd.surgekit.demo_service import DemoServer


def test_psi_file_is_parsed_to_some_and_full_avg10(tmp_path: Path) -> None:
    """The kernel's /proc/pressure format yields some/full avg10 percentages."""
    f = tmp_path / "io"
    f.write_text(
        "some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n"
        "full avg10=4.25 avg60=1.00 avg300=0.50 total=45\n"
    )
    assert read_psi(f) == {"some": 12.5, "full": 4.25}


def test_absent_psi_is_ignored_and_the_rest_is_sampled(tmp_path: Path) -> None:
    """Without /proc/pressure (old kernels, some containers) host signals still come."""
    readings = HostSampler(psi_dir=tmp_path / "missing").sample()
    assert {"cpu", "memory", "load", "disk_bps", "net_bps"} <= set(readings)
    assert "io_pressure" not in readings


@pytest.mark.skipif(not Path("/proc/pressure/io").exists(), reason="kernel without PSI")
def test_psi_readings_are_present_where_the_kernel_has_them() -> None:
    """io/cpu/memory pressure readings appear when the kernel exposes PSI."""
    readings = HostSampler().sample()
    assert {"io_pressure", "cpu_pressure", "memory_pressure"} <= set(readings)


@pytest.mark.parametrize(("q", "expected"), [(50, 50), (95, 95), (99, 99), (100, 100)])
def test_nearest_rank_percentile(q: float, expected: float) -> None:
    """Percentiles use the nearest-rank rule over the sorted window."""
    assert percentile([float(v) for v in range(1, 101)], q) == expected


def test_latency_window_slides_and_counts_errors() -> None:
    """Only samples within the window count; errors give the error rate."""
    now = [0.0]
    w = LatencyWindow(10.0, clock=lambda: now[0])
    for _ in range(10):
        w.add(1000.0, ok=False)  # old and slow
        now[0] += 0.1
    now[0] = 20.0
    for i in range(20):
        w.add(float(i + 1), ok=i != 0)
    stats = w.stats("service_latency")
    assert stats["service_latency"] == 19.0
    assert stats["service_latency_error_rate"] == pytest.approx(0.05)


def test_command_probe_reads_numbers_and_ignores_failures() -> None:
    """A generic command probe turns printed numbers into named readings; a failing command
    reports nothing (the signal is ignored) instead of stopping the governor."""
    probe = CommandProbe(("a", "b"), CommandSpec([sys.executable, "-c", "print(3, 4.5)"]))
    probe.measure()
    assert probe.sample() == {"a": 3.0, "b": 4.5}
    bad = CommandProbe(("a",), CommandSpec([sys.executable, "-c", "raise SystemExit(2)"]))
    bad.measure()
    assert bad.sample() == {}


def test_sql_probe_passes_the_password_in_the_environment_only() -> None:
    """The database password never appears on the probe's command line."""
    spec = sql_probe_spec("postgresql", "host=db1 dbname=population user=gov", "s3cret")
    assert "s3cret" not in " ".join(spec.argv)
    assert spec.env == {"PGPASSWORD": "s3cret"}
    my = sql_probe_spec("mysql", "mysql://backup@db2:3306/legal", "pw")
    assert "pw" not in my.argv and my.env == {"MYSQL_PWD": "pw"}
    assert my.argv[my.argv.index("-P") + 1] == "3306"


def test_build_governor_from_configuration(tmp_path: Path) -> None:
    """The governor section becomes bands per signal, holds, playbook paths relative to the file."""
    (tmp_path / "recoveryd.yaml").write_text(
        textwrap.dedent(
            f"""\
            state_dir: {tmp_path}/state
            encryption: {{key_file: {tmp_path}/k}}
            targets: {{local: {{kind: filesystem, path: {tmp_path}/s}}}}
            governor:
              interval: 500ms
              max_pause: 5m
              signals:
                cpu: {{elevated: 70, critical: 90}}
                io_pressure: {{elevated: 20, critical: 50}}
                service_latency:
                  http: {{url: "http://127.0.0.1:9/healthz"}}
                  p95_ms: {{elevated: 200, critical: 800}}
                command: {{run: [echo, "1"], value: {{elevated: 5, critical: 10}}}}
              hold: {{enter: 2s, exit: 20s}}
              on_enter: {{critical: [playbooks/shed/essential-only.yaml]}}
            """
        )
    )
    cfg = load_config(tmp_path / "recoveryd.yaml")
    gov = build_governor(cfg, None, None)
    assert set(gov.bands) == {"cpu", "io_pressure", "service_latency", "command"}
    assert gov.bands["service_latency"].critical == 800
    assert (gov.hold.enter, gov.hold.exit, gov.interval, gov.max_pause) == (2, 20, 0.5, 300)
    assert gov.status().level == "normal"


def test_a_probe_failing_under_pressure_keeps_its_last_reading_for_a_while() -> None:
    """An overloaded service makes its probe time out: the last reading holds for
    `stale_after` seconds (no false calm), then the signal drops out."""
    now = [100.0]
    argv = [sys.executable, "-c", "print(150)"]
    probe = CommandProbe(("rps",), CommandSpec(argv), stale_after=10, clock=lambda: now[0])
    probe.measure()
    probe.spec = CommandSpec([sys.executable, "-c", "raise SystemExit(1)"])
    now[0] = 105.0
    probe.measure()
    assert probe.sample() == {"rps": 150.0}
    now[0] = 111.0
    assert probe.sample() == {}


def test_counter_probe_reads_a_rate_from_a_chosen_field() -> None:
    """nginx stub_status prints several numbers; `field` picks the request count and
    `counter` turns it into requests per second (nothing on the first sample or a reset)."""
    now = [0.0]
    count = [100]
    probe = CommandProbe(
        ("demand",),
        CommandSpec([sys.executable, "-c", "import sys; print(sys.argv[1])", "0"]),
        field=3,
        counter=True,
        clock=lambda: now[0],
    )

    def stub_status(requests: int) -> CommandSpec:
        text = f"Active connections: 2\nserver accepts handled requests\n 5 5 {requests}\n"
        return CommandSpec([sys.executable, "-c", f"print({text!r})"])

    probe.spec = stub_status(count[0])
    probe.measure()
    assert probe.sample() == {}
    now[0] = 2.0
    probe.spec = stub_status(500)
    probe.measure()
    assert probe.sample() == {"demand": 200.0}
    now[0] = 3.0
    probe.spec = stub_status(10)  # nginx restarted: counter reset
    probe.measure()
    assert probe.sample() == {"demand": 200.0}


def test_http_probe_reports_latency_percentiles_and_errors_of_a_real_server() -> None:
    """The service-latency probe measures a real HTTP endpoint; a refused connection counts
    as an error at the timeout, so an unreachable service reads as slow, not as calm."""
    server = DemoServer(0, iterations=10)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe = HttpLatencyProbe(f"http://127.0.0.1:{server.port}/verify", timeout=2.0)
        for _ in range(5):
            probe.measure()
        ok = probe.sample()
    finally:
        server.shutdown()
        server.server_close()
    assert ok["service_latency_error_rate"] == 0.0
    assert 0 < ok["service_latency_p50"] <= ok["service_latency"] <= ok["service_latency_p99"]
    probe.measure()  # the server is gone now
    after = probe.sample()
    assert after["service_latency_p99"] >= 2000.0
    assert after["service_latency_error_rate"] > 0
