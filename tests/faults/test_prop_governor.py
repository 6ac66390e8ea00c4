"""Property tests of the governor's level decision (hypothesis): a level is entered only
after its hold time, left only after the exit hold, noise inside the hysteresis band
never makes it flap, and more pressure never gives a lower level."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from recoveryd.governor.decide import Band, Hold, LevelState, decide, rank
from tests.faults.conftest import Tally

BANDS = {"cpu": Band(elevated=50.0, critical=80.0), "p95": Band(elevated=200.0, critical=500.0)}
HOLD = Hold(enter=3.0, exit=30.0)
readings = st.fixed_dictionaries(
    {"cpu": st.floats(0, 120, allow_nan=False), "p95": st.floats(0, 900, allow_nan=False)}
)
steps = st.lists(st.tuples(st.floats(0.5, 10), readings), min_size=1, max_size=60)


def _run(samples: list[tuple[float, dict[str, float]]]) -> list[tuple[float, str]]:
    state, now, out = LevelState(), 0.0, []
    for dt, values in samples:
        now += dt
        state = decide(state, values, BANDS, HOLD, now).state
        out.append((now, state.level))
    return out


@given(value=st.floats(0, 200, allow_nan=False), more=st.floats(0, 100, allow_nan=False))
def test_a_band_is_monotonic_and_staying_is_easier_than_entering(
    value: float, more: float, campaign: Tally
) -> None:
    """A higher value never reaches a lower level, and the exit thresholds (used to stay)
    never give a lower level than the entry thresholds for the same value."""
    campaign.add("inputs")
    band = Band(elevated=50.0, critical=80.0)
    assert rank(band.level(value + more)) >= rank(band.level(value))
    assert rank(band.level(value, staying=True)) >= rank(band.level(value))


def _peak(values: dict[str, float], *, staying: bool) -> int:
    return max(rank(b.level(values[n], staying=staying)) for n, b in BANDS.items())


@given(samples=steps)
def test_levels_change_only_after_their_hold(
    samples: list[tuple[float, dict[str, float]]], campaign: Tally
) -> None:
    """A rise to a level at time t needs every sample of the last `hold.enter` seconds
    (from the first of an unbroken run) at or above that level's entry threshold; a fall
    needs the last `hold.exit` seconds below the old level's exit threshold."""
    campaign.add("inputs")
    history = _run(samples)
    times = [t for t, _ in history]
    level = "normal"
    for i, (now, new) in enumerate(history):
        if new == level:
            continue
        rising = rank(new) > rank(level)  # type: ignore[arg-type]
        target = rank(new if rising else level)  # type: ignore[arg-type]
        start = i
        while start > 0 and (
            _peak(samples[start - 1][1], staying=False) >= target
            if rising
            else _peak(samples[start - 1][1], staying=True) < target
        ):
            start -= 1
        assert now - times[start] >= (HOLD.enter if rising else HOLD.exit)
        level = new


@given(
    inside=st.lists(st.floats(45.0, 79.0, allow_nan=False), min_size=1, max_size=80),
    dt=st.floats(0.5, 5),
)
def test_noise_inside_the_band_never_leaves_elevated(
    inside: list[float], dt: float, campaign: Tally
) -> None:
    """Once elevated (cpu held at 60 past the enter hold), cpu readings that wander
    between the exit threshold (45) and the critical one never change the level."""
    campaign.add("inputs")
    state, now = LevelState(), 0.0
    for _ in range(3):
        now += 2.0
        state = decide(state, {"cpu": 60.0}, BANDS, HOLD, now).state
    assert state.level == "elevated"
    for value in inside:
        now += dt
        state = decide(state, {"cpu": value}, BANDS, HOLD, now).state
        assert state.level == "elevated"


@given(samples=steps, extra=st.lists(st.floats(0, 50, allow_nan=False), min_size=60, max_size=60))
def test_more_pressure_never_gives_a_lower_level(
    samples: list[tuple[float, dict[str, float]]], extra: list[float], campaign: Tally
) -> None:
    """Two runs on the same clock where the second's readings are each at least the
    first's: at every sample, the second run's level is at least the first's."""
    campaign.add("inputs")
    heavier = [
        (dt, {k: v + extra[i] for k, v in values.items()}) for i, (dt, values) in enumerate(samples)
    ]
    for (_, light), (_, heavy) in zip(_run(samples), _run(heavier), strict=True):
        assert rank(heavy) >= rank(light)  # type: ignore[arg-type]
