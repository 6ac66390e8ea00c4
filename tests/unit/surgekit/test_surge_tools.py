"""The surge drill's tools: a load generator that stays on the loopback, and the story checks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from recoveryd.surgekit.demo_service import DemoServer
from recoveryd.surgekit.loadgen import check, run_load
from recoveryd.surgekit.surge import problems


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8080", "http://example.gov.cn", "https://127.0.0.1:8443"]
)
def test_load_generator_refuses_anything_but_plain_http_on_the_loopback(url: str) -> None:
    """The surge can never be pointed at a real service by mistake."""
    with pytest.raises(ValueError, match="loopback"):
        run_load(url, rate=10, duration=1)


def test_load_generator_is_bounded_and_classifies_routes() -> None:
    """rate x duration requests, split into essential and non-essential routes."""
    server = DemoServer(0, iterations=10)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        summary = run_load(f"http://127.0.0.1:{server.port}", rate=50, duration=1, workers=4)
    finally:
        server.shutdown()
        server.server_close()
    assert summary.requests == 50
    assert summary.essential.requests + summary.non_essential.requests == 50
    assert summary.essential.success == 1.0


def test_check_names_what_the_surge_missed() -> None:
    """Below 99% essential success, or nothing shed, is reported in words."""
    summary: dict[str, Any] = {
        "essential": {"success": 0.95},
        "non_essential": {"shed_503": 0},
    }
    found = check(summary, min_success=0.99, min_shed=1)
    assert len(found) == 2 and "0.9500" in found[0]


GOOD = {
    "error": None,
    "max_level": "critical",
    "level": "normal",
    "paused": 1,
    "resumed": 1,
    "shed_actions": [
        {"trigger": "on_enter", "result": "passed"},
        {"trigger": "on_exit", "result": "passed"},
    ],
    "snapshot_id": "abc",
    "verified": True,
}


def test_a_complete_surge_story_has_no_problems() -> None:
    """Critical, pause and resume, shedding applied and undone, snapshot verified: passes."""
    assert problems(GOOD) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"max_level": "elevated"}, "never reached critical"),
        ({"paused": 0}, "did not pause"),
        ({"shed_actions": []}, "essential-only playbook"),
        ({"level": "critical"}, "did not return to normal"),
        ({"verified": False}, "not completed and verified"),
        ({"error": "InterruptedOperation: paused too long"}, "snapshot failed"),
    ],
)
def test_each_missing_part_of_the_surge_story_is_named(change: dict[str, Any], words: str) -> None:
    """The drill fails with a sentence naming what did not happen."""
    assert any(words in p for p in problems({**GOOD, **change}))
