"""The `pressure` kind, `pressure: below critical|elevated`: a stop condition on the load level.

The level comes from the run's `LevelSource` (`StepContext.pressure`): the
governor passes its own to the playbooks it runs. Else (`current_level`) a
running daemon's `state_dir/daemon.json` (written every few seconds) gives
its level; without one (no daemon) a small adapter reads the kernel's own
counters (/proc/meminfo, /proc/pressure, /proc/loadavg) against the
configured thresholds (defaults: memory 80/92 %, I/O PSI some avg10 20/50 %;
the load average per CPU only when `governor.signals.load` is configured).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import ClassVar, Literal

from recoveryd.config import LoadedConfig, Thresholds
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.schema import StepBase, StepKind

_LEVELS = {"normal": 0, "elevated": 1, "critical": 2}
Below = Literal["below critical", "below elevated"]


def current_level(cfg: LoadedConfig | None, state_dir: Path | None = None) -> str:
    """A running daemon's level (from a fresh `daemon.json`), else the host's."""
    if state_dir is not None:
        level = _daemon_level(state_dir / "daemon.json")
        if level is not None:
            return level
    return host_level(cfg)


def _daemon_level(path: Path, max_age: float = 30.0) -> str | None:
    """The level a running daemon last wrote, when recent enough to trust."""
    try:
        if time.time() - path.stat().st_mtime > max_age:
            return None
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    level = doc.get("level") if isinstance(doc, dict) else None
    return level if level in _LEVELS else None


def _grade(value: float | None, t: Thresholds) -> int:
    if value is None:
        return 0
    return 2 if value >= t.critical else 1 if value >= t.elevated else 0


def host_level(cfg: LoadedConfig | None) -> str:
    signals = cfg.config.governor.signals if cfg and cfg.config.governor else None
    mem_t = (signals.memory if signals else None) or Thresholds(elevated=80, critical=92)
    io_t = (signals.io_pressure if signals else None) or Thresholds(elevated=20, critical=50)
    grades = [_grade(_memory_percent(), mem_t), _grade(_psi("io"), io_t)]
    if signals is not None and signals.load is not None:
        # the load average counts the whole host (containers included): only when configured
        grades.append(_grade(_load_per_cpu(), signals.load))
    return {0: "normal", 1: "elevated", 2: "critical"}[max(grades)]


def _memory_percent() -> float | None:
    try:
        info = {
            line.split(":")[0]: float(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
        }
        return 100.0 * (1 - info["MemAvailable"] / info["MemTotal"])
    except (OSError, KeyError, ValueError, IndexError, ZeroDivisionError):
        return None


def _psi(kind: str) -> float | None:
    try:
        first = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
        fields = dict(part.split("=") for part in first.split()[1:])
        return float(fields["avg10"])
    except (OSError, KeyError, ValueError, IndexError):
        return None


def _load_per_cpu() -> float | None:
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return None


def run_pressure(ctx: StepContext, *, below: str) -> Outcome:
    level = ctx.pressure()
    limit = below.removeprefix("below ").strip()
    ok = _LEVELS.get(level, 0) < _LEVELS[limit]
    return Outcome("ok", level) if ok else Outcome("failed", level, f"pressure is {level}")


class PressureStep(StepBase):
    kind: ClassVar[str] = "pressure"
    pressure: Below


def run_step(step: PressureStep, ctx: StepContext, timeout: float | None) -> Outcome:
    del timeout
    return run_pressure(ctx, below=step.pressure)


def describe_step(step: PressureStep) -> str:
    return f"pressure {step.pressure}"


# a stop condition, not a step; no rollback either
KIND = StepKind(PressureStep, run_step, describe_step, probe=True, step=False, rollback=False)
