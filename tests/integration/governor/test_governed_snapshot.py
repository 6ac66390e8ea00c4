"""Governed snapshots through the real pipeline: pause at a chunk boundary and resume, the
RPO guard, abandoning a pause longer than max_pause, and a real CPU burner."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from recoveryd import app
from recoveryd.config import LoadedConfig
from recoveryd.errors import ExitCode, InterruptedOperation, RefusedError
from recoveryd.flow import Progress
from recoveryd.governor import build_governor
from recoveryd.governor.core import Governor
from recoveryd.governor.decide import Band, Hold
from recoveryd.governor.signals import HostSampler
from recoveryd.state import StateStore

pytestmark = pytest.mark.integration


class SimulatedPressure:
    """A pressure source the test turns up and down."""

    def __init__(self) -> None:
        self.value = 0.0

    def sample(self) -> dict[str, float]:
        return {"simulated": self.value}


def simulated_governor(
    cfg: LoadedConfig, **kw: Any
) -> tuple[Governor, SimulatedPressure, StateStore]:
    sim = SimulatedPressure()
    state = StateStore(cfg.resolve_path(cfg.config.state_dir))
    gov = Governor(sim.sample, {"simulated": Band(50, 80)}, hold=Hold(0, 0), events=state, **kw)
    return gov, sim, state


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    return t, out


def kinds(state: StateStore) -> list[str]:
    return [e.kind for e in state.events()]


def test_running_snapshot_pauses_at_critical_resumes_and_verifies(
    governed_config: Callable[..., LoadedConfig],
) -> None:
    """Pressure reaching critical mid-snapshot pauses the upload at a chunk boundary (nothing
    listed meanwhile); when it drops the snapshot resumes, completes and verifies byte for byte."""
    cfg = governed_config(megabytes=12)
    gov, sim, state = simulated_governor(cfg)
    first_chunk = threading.Event()

    def progress(p: Progress) -> None:
        if not first_chunk.is_set():
            sim.value = 95
            gov.tick()
            first_chunk.set()

    t, out = run_in_thread(lambda: app.backup(cfg, ["tiles"], admission=gov, progress=progress))
    assert gov.wait_for(lambda: any("paused" in h for h in gov.status().held_back), timeout=60)
    assert gov.status().level == "critical"
    assert app.list_snapshots(cfg, source="tiles") == []
    sim.value = 10
    gov.tick()
    t.join(timeout=120)
    assert "error" not in out, out.get("error")
    [result] = out["result"]
    report = app.verify(cfg, [result.id], read_data=True)
    assert report.ok
    seen = kinds(state)
    assert seen.index("paused") < seen.index("resumed")
    assert seen.count("level_change") == 2


def test_rpo_guard_runs_an_overdue_source_throttled_and_says_so(
    governed_config: Callable[..., LoadedConfig],
) -> None:
    """At critical, a normal source that would break its RPO runs anyway (throttled) with an
    rpo_override event and alert; one without that urgency is refused with exit code 5."""
    cfg = governed_config(megabytes=1)
    alerts: list[str] = []
    gov, sim, state = simulated_governor(cfg, alert=lambda kind, data: alerts.append(kind))
    sim.value = 95
    gov.tick()
    with pytest.raises(RefusedError) as refused:
        app.backup(cfg, ["tiles"], admission=gov)
    assert refused.value.exit_code == ExitCode.REFUSED
    [result] = app.backup(cfg, ["cache"], admission=gov)
    assert app.verify(cfg, [result.id], read_data=True).ok
    assert "rpo_override" in kinds(state)
    assert "rpo_override" in alerts
    override = next(e for e in state.events() if e.kind == "rpo_override")
    assert override.data["job"] == "backup:cache"


def test_pause_past_max_pause_abandons_and_the_retry_commits(
    governed_config: Callable[..., LoadedConfig],
) -> None:
    """A dump paused longer than governor.max_pause is abandoned (no transaction held open):
    nothing is committed, the run is recorded aborted, and the next attempt succeeds."""
    cfg = governed_config(megabytes=4)
    gov, sim, state = simulated_governor(cfg, max_pause=0.5)

    def progress(p: Progress) -> None:
        if sim.value == 0:
            sim.value = 95
            gov.tick()

    with pytest.raises(InterruptedOperation, match="max_pause"):
        app.backup(cfg, ["tiles"], admission=gov, progress=progress)
    assert app.list_snapshots(cfg, source="tiles") == []
    assert state.runs(kind="backup", source="tiles")[0].result == "aborted"
    assert "abandoned" in kinds(state)
    sim.value = 10
    gov.tick()
    [result] = app.backup(cfg, ["tiles"], admission=gov)
    assert app.verify(cfg, [result.id], read_data=True).ok


GOVERNOR_CPU = """\
governor:
  interval: 250ms
  signals:
    cpu: {elevated: 70, critical: 90}
  hold: {enter: 1s, exit: 1s}
"""


def test_real_cpu_burner_pauses_the_snapshot_until_it_stops(
    governed_config: Callable[..., LoadedConfig],
) -> None:
    """With real host signals: CPU burners on every core drive the level to critical, the
    running snapshot pauses; when they stop the level falls and the snapshot completes."""
    host = HostSampler()
    threading.Event().wait(1.0)  # a one-second CPU measurement, not synchronisation
    busy = host.sample()["cpu"]
    if busy > 50:
        pytest.skip(f"the host is already {busy:.0f}% busy: a CPU burner cannot be told apart")
    cfg = governed_config(GOVERNOR_CPU, megabytes=12)
    state = StateStore(cfg.resolve_path(cfg.config.state_dir))
    gov = build_governor(cfg, state, None)
    burners: list[subprocess.Popen[bytes]] = []
    started = threading.Event()

    def progress(p: Progress) -> None:
        if started.is_set():
            return
        started.set()
        gov.start()
        for _ in range(4):
            burners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        gov.wait_for(lambda: gov.level() == "critical", timeout=60)

    try:
        t, out = run_in_thread(lambda: app.backup(cfg, ["tiles"], admission=gov, progress=progress))
        assert gov.wait_for(lambda: any("paused" in h for h in gov.status().held_back), 90)
        for b in burners:
            b.kill()
            b.wait()
        t.join(timeout=180)
    finally:
        for b in burners:
            b.kill()
        gov.stop()
    assert "error" not in out, out.get("error")
    [result] = out["result"]
    assert app.verify(cfg, [result.id], read_data=True).ok
    seen = kinds(state)
    assert "paused" in seen and "resumed" in seen
    change = next(e for e in state.events() if e.kind == "level_change")
    assert "cpu" in change.data["reasons"]
