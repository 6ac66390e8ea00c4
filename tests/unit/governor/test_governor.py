"""The Governor object: events, pausing gates, max pause, RPO override, shedding actions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from recoveryd.errors import InterruptedOperation
from recoveryd.governor.core import Actions, Governor
from recoveryd.governor.decide import Band, Hold


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def record_event(
        self, kind: str, data: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> int:
        self.items.append((kind, dict(data or {})))
        return len(self.items)

    def events(self, *, kinds: tuple[str, ...] | None = None, limit: int = 100) -> list[Any]:
        """No recorded history: the governor starts as on a fresh state store."""
        return []

    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]


@dataclass(frozen=True)
class Ran:
    """What a drill run returns, as far as the governor reads it."""

    status: str
    run_id: str
    measures: Mapping[str, int] = field(default_factory=dict)


def make(events: Events, **kw: Any) -> Governor:
    return Governor(dict, {"cpu": Band(70, 90)}, hold=Hold(0, 0), events=events, **kw)


def test_level_change_is_an_event_with_reason() -> None:
    """Every level change is recorded with from, to and the signal that caused it."""
    ev = Events()
    gov = make(ev)
    gov.tick({"cpu": 95}, now=0)
    gov.tick({"cpu": 10}, now=1)
    changes = [d for k, d in ev.items if k == "level_change"]
    assert [(c["from"], c["to"]) for c in changes] == [
        ("normal", "critical"),
        ("critical", "normal"),
    ]
    assert changes[0]["reasons"] == ["cpu"] and changes[0]["cpu"] == 95


def test_deferral_is_recorded_once_and_shown_as_held_back() -> None:
    """A job told to wait is one `deferred` event (not one per retry) and shows in status."""
    ev = Events()
    gov = make(ev)
    gov.tick({"cpu": 95}, now=0)
    assert gov.admit("normal", job="backup legal-entities") == "wait"
    assert gov.admit("normal", job="backup legal-entities") == "wait"
    assert ev.kinds().count("deferred") == 1
    assert gov.status().held_back == ["backup legal-entities (normal): waiting"]
    gov.tick({"cpu": 10}, now=1)
    assert gov.admit("normal", job="backup legal-entities") == "run"
    assert gov.status().held_back == []


def test_rpo_override_event_and_alert_and_throttled_gate() -> None:
    """A waiting job about to break its RPO runs throttled, with an event and an alert."""
    ev = Events()
    alerts: list[str] = []
    gov = make(ev, alert=lambda kind, data: alerts.append(kind))
    gov.tick({"cpu": 95}, now=0)
    assert gov.admit("normal", job="backup population", due_soon=True) == "throttled"
    assert "rpo_override" in ev.kinds() and "rpo_override" in alerts
    gate = gov.gate("normal")
    gate.checkpoint()  # not paused: the override carries into the gate of this thread
    assert gate.concurrency(4) < 4


def test_running_upload_pauses_at_checkpoint_and_resumes() -> None:
    """At critical a normal-priority gate blocks at the chunk boundary until the level drops."""
    ev = Events()
    gov = make(ev)
    gate = gov.gate("normal", job="backup cache")
    gov.tick({"cpu": 95}, now=0)
    passed = threading.Event()

    def work() -> None:
        gate.checkpoint()
        passed.set()

    t = threading.Thread(target=work)
    t.start()
    assert gov.wait_for(lambda: bool(gov.status().held_back), timeout=10)
    assert not passed.is_set()
    assert gov.status().held_back == ["backup cache: paused"]
    gov.tick({"cpu": 10}, now=1)
    t.join(timeout=10)
    assert passed.is_set()
    assert ev.kinds().index("paused") < ev.kinds().index("resumed")


def test_pause_longer_than_max_pause_abandons_the_work() -> None:
    """A dump paused past governor.max_pause is interrupted so it holds no transaction forever."""
    ev = Events()
    gov = make(ev, max_pause=0.2)
    gov.tick({"cpu": 95}, now=0)
    gate = gov.gate("normal", job="backup population")
    with pytest.raises(InterruptedOperation, match="max_pause"):
        gate.checkpoint()
    assert "abandoned" in ev.kinds()


def test_critical_work_is_throttled_not_paused_at_critical() -> None:
    """Critical sources keep uploading at critical, with reduced bandwidth and concurrency."""
    gov = make(Events(), throttled_bandwidth=1_000_000)
    for t in range(3):
        gov.tick({"cpu": 95}, now=t)
    gate = gov.gate("critical")
    gate.checkpoint()
    assert gate.concurrency(8) < 8
    assert gov.throttled_rate() < 1_000_000


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stop", ["work", "governor"])
def test_a_stop_ends_a_throttled_wait_at_once(stop: str) -> None:
    """Throttled to 1 B/s, the bytes after 3600 others wait an hour; the work's stop (the
    cancel event given to its gate: a shutdown, a lost fleet claim), or the governor's own
    stop, set by another thread, ends that wait with InterruptedOperation (the test's
    timeout is far shorter than the hour)."""
    gov = make(Events(), throttled_bandwidth=1.0)
    for t in range(3):
        gov.tick({"cpu": 95}, now=t)
    cancel = threading.Event()
    gate = gov.gate("critical", cancel=cancel)
    gate.throttle(3600)  # the first bytes pass: nothing came before them
    setter = threading.Thread(target=cancel.set if stop == "work" else gov.stop)
    setter.start()
    with pytest.raises(InterruptedOperation):
        gate.throttle(1)
    setter.join()


@pytest.mark.timeout(60)
def test_a_paused_gate_stops_when_its_work_is_stopped() -> None:
    """A gate paused at critical (max_pause ten minutes) ends its pause with
    InterruptedOperation when the cancel event given to it is set (a fleet member fencing
    itself), though the governor still runs and the level holds."""
    gov = make(Events())
    gov.tick({"cpu": 95}, now=0)
    cancel = threading.Event()
    gate = gov.gate("normal", job="backup population", cancel=cancel)
    raised: list[BaseException] = []

    def work() -> None:
        try:
            gate.checkpoint()
        except InterruptedOperation as exc:
            raised.append(exc)

    t = threading.Thread(target=work)
    t.start()
    assert gov.wait_for(lambda: bool(gov.status().held_back), timeout=10)
    cancel.set()
    t.join()
    assert [str(e) for e in raised] == ["interrupted while paused; the snapshot was not committed"]
    assert not gov.stopping.is_set()


def test_shedding_playbooks_run_on_enter_and_exit_and_are_recorded(tmp_path: Path) -> None:
    """on_enter playbooks run when critical is entered, on_exit ones when it is left."""
    ev = Events()
    ran: list[str] = []
    enter, leave = tmp_path / "essential-only.yaml", tmp_path / "restore.yaml"

    def run_playbook(path: Path, level: Callable[[], str]) -> Ran:
        ran.append(path.name)
        if path == leave:
            raise RuntimeError("nginx -t failed")
        return Ran("passed", "r1")

    gov = make(
        ev,
        run_playbook=run_playbook,
        actions=Actions(on_enter={"critical": [enter]}, on_exit={"critical": [leave]}),
    )
    gov.start()
    try:
        gov.tick({"cpu": 95}, now=0)
        gov.tick({"cpu": 10}, now=1)
        assert gov.wait_idle(timeout=10)
    finally:
        gov.stop()
    assert ran == ["essential-only.yaml", "restore.yaml"]
    actions = [d for k, d in ev.items if k == "shed_action"]
    assert [a["result"] for a in actions] == ["passed", "failed"]
    assert actions[1]["error"] == "nginx -t failed"


def test_sampling_thread_measures_its_own_cpu() -> None:
    """The governor accounts for the CPU its sampling costs (reported by the bench)."""
    gov = Governor(lambda: {"cpu": 1.0}, {"cpu": Band(70, 90)}, interval=0.01)
    gov.start()
    try:
        assert gov.wait_for(lambda: gov.ticks >= 5, timeout=10) or gov.ticks >= 5
    finally:
        gov.stop()
    assert gov.cpu_seconds >= 0.0 and gov.ticks >= 5


def test_a_count_measured_by_a_shedding_playbook_joins_its_event(tmp_path: Path) -> None:
    """When the playbook measured how many requests were turned away, the shed_action event
    carries that count as `requests_shed`, so reports need not say "unknown"."""
    ev = Events()
    leave = tmp_path / "restore.yaml"

    def run_playbook(path: Path, level: Callable[[], str]) -> Ran:
        measures = {"requests_shed": 1520, "result": 3}  # cannot overwrite the event's own keys
        return Ran("passed", "r2", measures)

    gov = make(ev, run_playbook=run_playbook)
    gov.run_action("exit", "critical", leave)
    (action,) = [d for k, d in ev.items if k == "shed_action"]
    assert action["requests_shed"] == 1520
    assert action["result"] == "passed"


def test_a_shedding_playbook_reads_the_governors_own_level(tmp_path: Path) -> None:
    """The playbook runner receives the governor's `level`, so the playbook's `pressure`
    probes see the level the governor is in now, not one read back from a status file."""
    ev = Events()
    seen: list[str] = []

    def run_playbook(path: Path, level: Callable[[], str]) -> Ran:
        seen.append(level())
        return Ran("passed", "r3")

    gov = make(ev, run_playbook=run_playbook)
    gov.tick({"cpu": 95}, now=0)
    gov.run_action("enter", "critical", tmp_path / "essential-only.yaml")
    gov.tick({"cpu": 10}, now=1)
    gov.run_action("exit", "critical", tmp_path / "restore.yaml")
    assert seen == ["critical", "normal"]
