"""The pure heart of the governor: readings -> level, level -> admission
(docs/PERFORMANCE.md, "Load shedding").

Nothing here reads a clock, a file or a socket: time arrives as an argument,
so every rule is tested with tables.

Level with hysteresis, twice over:
- in value: a signal enters a level at its threshold and stays there until it
  falls below `exit_ratio` of that threshold (a band, so noise around the
  threshold does not count as leaving);
- in time: the level rises only after the signals stayed at or above the new
  level for `hold_enter` seconds, and falls only after they stayed below the
  current level for `hold_exit` seconds. It then falls to the highest level
  seen during that quiet period.

Admission by priority:

| level    | critical  | normal    | low  |
|----------|-----------|-----------|------|
| normal   | run       | run       | run  |
| elevated | run       | throttled | wait |
| critical | throttled | wait      | wait |

`due_soon` (waiting would break the source's RPO) turns "wait" into
"throttled" with an RPO override. Running work follows the same table through
its gate: "wait" means paused at the next chunk boundary.

Throttled work follows an AIMD factor: multiplicative decrease on each tick
under pressure, additive increase when calm, so bandwidth and upload
concurrency adapt to the pressure instead of one fixed cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

Level = Literal["normal", "elevated", "critical"]
Verdict = Literal["run", "throttled", "wait"]
LEVELS: tuple[Level, ...] = ("normal", "elevated", "critical")
PRIORITIES = ("critical", "normal", "low")


def rank(level: Level) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True)
class Band:
    """Thresholds of one signal: enter `elevated`/`critical` at these values."""

    elevated: float
    critical: float
    exit_ratio: float = 0.9  # leave a level below exit_ratio x its threshold

    def level(self, value: float, *, staying: bool = False) -> Level:
        """The level this value reaches; `staying` uses the (lower) exit thresholds."""
        factor = self.exit_ratio if staying else 1.0
        if value >= self.critical * factor:
            return "critical"
        if value >= self.elevated * factor:
            return "elevated"
        return "normal"


@dataclass(frozen=True)
class Hold:
    enter: float = 3.0
    exit: float = 30.0


@dataclass(frozen=True)
class LevelState:
    """Where the decision stands; fold readings into it with `decide`."""

    level: Level = "normal"
    changed_at: float | None = None
    above_since: Mapping[Level, float] = field(default_factory=dict)
    below_since: float | None = None
    below_peak: Level = "normal"
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    state: LevelState
    previous: Level

    @property
    def changed(self) -> bool:
        return self.state.level != self.previous


def signal_levels(
    readings: Mapping[str, float], bands: Mapping[str, Band], *, staying: bool = False
) -> dict[str, Level]:
    """Level reached by each signal that has both a band and a finite reading."""
    out: dict[str, Level] = {}
    for name, band in bands.items():
        value = readings.get(name)
        if value is None or not math.isfinite(value):
            continue
        out[name] = band.level(value, staying=staying)
    return out


def _peak(levels: Mapping[str, Level]) -> Level:
    return max(levels.values(), key=rank, default="normal")


def decide(
    state: LevelState,
    readings: Mapping[str, float],
    bands: Mapping[str, Band],
    hold: Hold,
    now: float,
) -> Decision:
    """Fold one sample into the state. Missing or non-finite readings are ignored."""
    entering = signal_levels(readings, bands)
    staying = signal_levels(readings, bands, staying=True)
    raw_up, raw_stay = _peak(entering), _peak(staying)
    current = state.level

    above = {lv: state.above_since.get(lv, now) for lv in LEVELS[1:] if rank(raw_up) >= rank(lv)}
    risen = [lv for lv, t in above.items() if rank(lv) > rank(current) and now - t >= hold.enter]
    if risen:
        new = max(risen, key=rank)
        reasons = tuple(sorted(n for n, lv in entering.items() if rank(lv) >= rank(new)))
        return Decision(LevelState(new, now, above, None, "normal", reasons), current)

    if rank(raw_stay) < rank(current):
        since = state.below_since if state.below_since is not None else now
        peak = (
            max(state.below_peak, raw_stay, key=rank) if state.below_since is not None else raw_stay
        )
        if now - since >= hold.exit:
            reasons = tuple(sorted(n for n, lv in staying.items() if lv != "normal"))
            return Decision(LevelState(peak, now, above, None, "normal", reasons), current)
        return Decision(
            replace(state, above_since=above, below_since=since, below_peak=peak), current
        )

    return Decision(
        replace(state, above_since=above, below_since=None, below_peak="normal"), current
    )


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    rpo_override: bool = False


_TABLE: Mapping[Level, Mapping[str, Verdict]] = {
    "normal": {"critical": "run", "normal": "run", "low": "run"},
    "elevated": {"critical": "run", "normal": "throttled", "low": "wait"},
    "critical": {"critical": "throttled", "normal": "wait", "low": "wait"},
}


def admit(level: Level, priority: str, *, due_soon: bool = False) -> Admission:
    """May work of `priority` start at `level`? Unknown priorities count as `low`."""
    verdict = _TABLE[level].get(priority, _TABLE[level]["low"])
    if verdict == "wait" and due_soon:
        return Admission("throttled", rpo_override=True)
    return Admission(verdict)


@dataclass(frozen=True)
class GatePolicy:
    """What a running job's gate does now."""

    paused: bool
    throttled: bool


def running_policy(level: Level, priority: str, *, override: bool = False) -> GatePolicy:
    """Running work follows the admission table: "wait" pauses it at a chunk boundary.

    An RPO override keeps the job running, throttled, whatever the level.
    """
    verdict = admit(level, priority, due_soon=override).verdict
    return GatePolicy(paused=verdict == "wait", throttled=verdict == "throttled")


@dataclass(frozen=True)
class Aimd:
    """Additive increase, multiplicative decrease of the throttle factor (0 < factor <= 1)."""

    floor: float = 0.05
    increase: float = 0.1
    decrease: Mapping[Level, float] = field(
        default_factory=lambda: {"normal": 1.0, "elevated": 0.8, "critical": 0.5}
    )

    def step(self, factor: float, level: Level) -> float:
        if level == "normal":
            return min(1.0, factor + self.increase)
        return max(self.floor, factor * self.decrease[level])


def throttled_concurrency(configured: int, factor: float) -> int:
    """Upload concurrency of throttled work: a share of the configured one, at least 1."""
    return max(1, min(configured, math.floor(configured * factor)))


def throttled_rate(ceiling: float, factor: float) -> float:
    """Bytes per second of throttled work."""
    return max(1.0, ceiling * factor)
