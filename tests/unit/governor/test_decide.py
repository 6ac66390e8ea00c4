"""The governor's pure decision: thresholds, hysteresis, admission by priority, RPO guard."""

from __future__ import annotations

import itertools
import random

import pytest

from recoveryd.governor.decide import (
    Aimd,
    Band,
    Hold,
    LevelState,
    admit,
    decide,
    running_policy,
    throttled_concurrency,
)

CPU = {"cpu": Band(70, 90)}
NO_HOLD = Hold(enter=0, exit=0)


def run(samples: list[tuple[float, float]], bands=CPU, hold=NO_HOLD) -> list[str]:
    """Feed (time, cpu) samples; return the level after each."""
    state = LevelState()
    out = []
    for t, cpu in samples:
        state = decide(state, {"cpu": cpu}, bands, hold, t).state
        out.append(state.level)
    return out


@pytest.mark.parametrize(
    ("cpu", "level"),
    [
        (0, "normal"),
        (69.9, "normal"),
        (70, "elevated"),
        (89.9, "elevated"),
        (90, "critical"),
        (100, "critical"),
    ],
)
def test_thresholds_map_a_reading_to_its_level(cpu: float, level: str) -> None:
    """A reading at or above a threshold reaches that level (without hold, at once)."""
    assert run([(0, cpu)]) == [level]


def test_the_highest_signal_decides_and_is_named_as_the_reason() -> None:
    """With several signals, the level is the worst one and the reason names it."""
    bands = {"cpu": Band(70, 90), "service_latency": Band(200, 800)}
    d = decide(LevelState(), {"cpu": 75, "service_latency": 900}, bands, NO_HOLD, 0)
    assert d.state.level == "critical"
    assert d.state.reasons == ("service_latency",)
    assert d.changed and d.previous == "normal"


def test_missing_or_nonfinite_readings_are_ignored() -> None:
    """A signal that could not be sampled (absent PSI, failed probe) does not move the level."""
    bands = {"cpu": Band(70, 90), "io_pressure": Band(20, 50)}
    d = decide(LevelState(), {"cpu": 10, "io_pressure": float("nan")}, bands, NO_HOLD, 0)
    assert d.state.level == "normal"
    d = decide(LevelState(), {"memory": 99}, bands, NO_HOLD, 0)
    assert d.state.level == "normal"


def test_enter_hold_requires_pressure_to_last() -> None:
    """The level rises only after the signal stayed above the threshold for `hold.enter`."""
    hold = Hold(enter=3, exit=30)
    assert run([(0, 95), (1, 95), (2, 95), (3, 95)], hold=hold) == [
        "normal",
        "normal",
        "normal",
        "critical",
    ]


def test_a_short_spike_does_not_raise_the_level() -> None:
    """A spike shorter than the enter hold resets the timer when it ends."""
    hold = Hold(enter=3, exit=30)
    assert run([(0, 95), (2, 95), (2.5, 10), (3, 95), (5, 95)], hold=hold) == ["normal"] * 5


def test_rising_through_elevated_into_critical_uses_each_hold() -> None:
    """Elevated after its hold; critical after its own hold counted from when it was reached."""
    hold = Hold(enter=2, exit=30)
    levels = run([(0, 75), (2, 75), (3, 95), (4, 95), (5, 95)], hold=hold)
    assert levels == ["normal", "elevated", "elevated", "elevated", "critical"]


def test_exit_hold_requires_calm_to_last_then_drops_to_the_peak_seen() -> None:
    """The level falls only after `hold.exit` below it, to the highest level seen meanwhile."""
    hold = Hold(enter=0, exit=10)
    samples = [(0, 95), (1, 10), (5, 75), (10, 10), (11, 10)]
    assert run(samples, hold=hold) == ["critical", "critical", "critical", "critical", "elevated"]


def test_calm_interrupted_by_pressure_restarts_the_exit_hold() -> None:
    """Pressure back at the current level during the exit hold restarts it."""
    hold = Hold(enter=0, exit=10)
    samples = [(0, 95), (1, 10), (8, 95), (12, 10), (21, 10), (22, 10)]
    assert run(samples, hold=hold) == ["critical"] * 5 + ["normal"]


def test_value_band_keeps_the_level_near_the_threshold() -> None:
    """Just below the enter threshold (within exit_ratio) still counts as staying."""
    hold = Hold(enter=0, exit=0)
    assert run([(0, 91), (1, 85), (2, 80)], hold=hold) == ["critical", "critical", "elevated"]


def test_no_flapping_on_a_noisy_signal() -> None:
    """CPU noise of +-15 around the critical threshold, hold 3s/30s: at most one change each way."""
    rng = random.Random(7)
    hold = Hold(enter=3, exit=30)
    samples = [(t * 0.5, 90 + rng.uniform(-15, 15)) for t in range(600)]
    levels = run(samples, hold=hold)
    changes = sum(1 for a, b in itertools.pairwise(levels) if a != b)
    assert changes <= 2


def test_noisy_signal_without_hold_would_flap() -> None:
    """The same noise without hold flaps: the hold is what prevents it (a control for the above)."""
    rng = random.Random(7)
    samples = [(t * 0.5, 90 + rng.uniform(-15, 15)) for t in range(600)]
    levels = run(samples, hold=NO_HOLD)
    assert sum(1 for a, b in itertools.pairwise(levels) if a != b) > 10


ADMISSION = [
    # level, priority, due_soon, verdict, override
    ("normal", "critical", False, "run", False),
    ("normal", "normal", False, "run", False),
    ("normal", "low", False, "run", False),
    ("elevated", "critical", False, "run", False),
    ("elevated", "normal", False, "throttled", False),
    ("elevated", "low", False, "wait", False),
    ("critical", "critical", False, "throttled", False),
    ("critical", "normal", False, "wait", False),
    ("critical", "low", False, "wait", False),
    # RPO guard: a job that would break its RPO runs anyway, throttled, with an override
    ("elevated", "low", True, "throttled", True),
    ("critical", "normal", True, "throttled", True),
    ("critical", "low", True, "throttled", True),
    # due_soon changes nothing when the job may run anyway
    ("normal", "low", True, "run", False),
    ("elevated", "normal", True, "throttled", False),
    ("critical", "critical", True, "throttled", False),
]


@pytest.mark.parametrize(("level", "priority", "due_soon", "verdict", "override"), ADMISSION)
def test_admission_by_priority_and_rpo_guard(
    level: str, priority: str, due_soon: bool, verdict: str, override: bool
) -> None:
    """docs/PERFORMANCE.md (how it behaves): low waits at elevated, normal waits at critical,
    critical is throttled there; a job about to break its RPO is never told to wait."""
    result = admit(level, priority, due_soon=due_soon)  # type: ignore[arg-type]
    assert (result.verdict, result.rpo_override) == (verdict, override)


def test_unknown_priority_is_treated_as_low() -> None:
    """A priority the table does not know gets the most conservative answer."""
    assert admit("elevated", "bulk").verdict == "wait"


@pytest.mark.parametrize(
    ("level", "priority", "override", "paused", "throttled"),
    [
        ("normal", "normal", False, False, False),
        ("elevated", "normal", False, False, True),
        ("elevated", "low", False, True, False),
        ("critical", "normal", False, True, False),
        ("critical", "critical", False, False, True),
        ("critical", "normal", True, False, True),
    ],
)
def test_running_work_pauses_or_throttles_like_admission(
    level: str, priority: str, override: bool, paused: bool, throttled: bool
) -> None:
    """Running non-critical uploads pause at critical; RPO-overridden work keeps going."""
    policy = running_policy(level, priority, override=override)  # type: ignore[arg-type]
    assert (policy.paused, policy.throttled) == (paused, throttled)


def test_aimd_decreases_multiplicatively_and_recovers_additively() -> None:
    """The throttle factor halves per critical tick, shrinks at elevated, grows back by steps."""
    aimd = Aimd()
    f = 1.0
    f = aimd.step(f, "critical")
    assert f == pytest.approx(0.5)
    f = aimd.step(f, "elevated")
    assert f == pytest.approx(0.4)
    for _ in range(20):
        f = aimd.step(f, "critical")
    assert f == pytest.approx(aimd.floor)
    f = aimd.step(f, "normal")
    assert f == pytest.approx(aimd.floor + aimd.increase)
    for _ in range(20):
        f = aimd.step(f, "normal")
    assert f == 1.0


@pytest.mark.parametrize(
    ("configured", "factor", "expected"), [(4, 1.0, 4), (4, 0.5, 2), (4, 0.05, 1), (1, 0.5, 1)]
)
def test_throttled_concurrency_follows_the_factor(
    configured: int, factor: float, expected: int
) -> None:
    """Upload concurrency narrows with the factor but never below one."""
    assert throttled_concurrency(configured, factor) == expected
