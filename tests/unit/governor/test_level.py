"""The recorded level: what a CLI command (another process) reads to respect shedding."""

from __future__ import annotations

from pathlib import Path

from recoveryd.governor import recorded_level, refusal
from recoveryd.governor.core import Governor
from recoveryd.governor.decide import Band, Hold
from recoveryd.state import StateStore


def test_no_history_means_normal_and_nothing_refused(tmp_path: Path) -> None:
    """Without any recorded level change, work is not refused."""
    state = StateStore(tmp_path)
    assert recorded_level(state).level == "normal"
    assert refusal(state, "low", job="verify") is None


def test_cli_work_is_refused_while_the_daemon_sheds(tmp_path: Path) -> None:
    """While the daemon's governor is at critical, normal work from the CLI is refused with a
    reason naming the level and --force; critical work is not refused."""
    state = StateStore(tmp_path)
    gov = Governor(dict, {"cpu": Band(70, 90)}, hold=Hold(0, 0), events=state)
    gov.tick({"cpu": 95}, now=0)
    assert recorded_level(state).level == "critical"
    reason = refusal(state, "normal", job="backup legal-entities")
    assert reason is not None and "critical" in reason and "--force" in reason
    assert refusal(state, "critical", job="backup population") is None


def test_stopping_or_restarting_the_governor_leaves_no_stale_level(tmp_path: Path) -> None:
    """A governor stopped at critical records the return to normal; one that died at critical
    is reset by the next start."""
    state = StateStore(tmp_path)
    gov = Governor(dict, {"cpu": Band(70, 90)}, hold=Hold(0, 0), events=state)
    gov.tick({"cpu": 95}, now=0)
    gov.stop()
    assert recorded_level(state).level == "normal"
    crashed = Governor(dict, {"cpu": Band(70, 90)}, hold=Hold(0, 0), events=state)
    crashed.tick({"cpu": 95}, now=0)  # ...and never stopped
    fresh = Governor(lambda: {"cpu": 1.0}, {"cpu": Band(70, 90)}, events=state, interval=60)
    fresh.start()
    try:
        assert recorded_level(state).level == "normal"
    finally:
        fresh.stop()
