"""The schedule wiring: expressions, the job plan, and the APScheduler loop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from recoveryd.config import Config
from recoveryd.daemon.schedule import JobSpec, Scheduler, build_trigger, cron_weekdays, plan_jobs
from recoveryd.errors import ConfigError
from tests.fixtures.web import poll


def _config(**extra: object) -> Config:
    doc: dict[str, object] = {
        "encryption": {"key_file": "k"},
        "targets": {"local": {"kind": "filesystem", "path": "/tmp/x"}},
        "sources": {
            "pop": {
                "kind": "sqlite",
                "path": "/tmp/p.db",
                "schedule": "*/15 * * * *",
                "rpo": "1h",
                "priority": "critical",
                "targets": ["local"],
                "verify": {"schedule": "30 2 * * *"},
                "restore_drill": {"schedule": "0 3 * * 0", "into": "/tmp/drill.db"},
            },
            "tiles": {"kind": "directory", "path": "/srv", "targets": ["local"]},
        },
        "drills": [{"playbook": "playbooks/pg-failover.yaml", "schedule": "0 4 1 * *"}],
    }
    doc.update(extra)
    return Config.model_validate(doc)


def test_plan_has_one_job_per_scheduled_activity() -> None:
    """Each source schedule, verify schedule, restore drill, drill and the prune become one job."""
    jobs = {j.id: j for j in plan_jobs(_config())}
    assert set(jobs) == {
        "backup:pop",
        "verify:pop",
        "restore_drill:pop",
        "drill:0:pg-failover",
        "prune",
    }
    assert jobs["backup:pop"].priority == "critical"
    assert jobs["verify:pop"].priority == "low"
    assert jobs["drill:0:pg-failover"].playbook == "playbooks/pg-failover.yaml"


def test_invalid_schedule_names_its_key() -> None:
    """A broken cron expression is a configuration error naming the key path."""
    cfg = _config(daemon={"prune_schedule": "61 * * * *"})
    with pytest.raises(ConfigError, match=r"daemon.prune_schedule: schedule \"61 \* \* \* \*\""):
        plan_jobs(cfg)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", "2026-11-23T10:07:00+00:00", "2026-11-23T10:15:00+00:00"),
        ("*/2 * * * * *", "2026-11-23T10:07:00.5+00:00", "2026-11-23T10:07:02+00:00"),
        ("every 30s", None, None),
        ("@daily", "2026-11-23T10:07:00+00:00", "2026-11-24T00:00:00+00:00"),
        # crontab: 0 = Sunday. 2026-11-23 is a Monday.
        ("0 3 * * 0", "2026-11-23T10:00:00+00:00", "2026-11-29T03:00:00+00:00"),
        ("0 3 * * 7", "2026-11-23T10:00:00+00:00", "2026-11-29T03:00:00+00:00"),
        ("0 3 * * 1-5", "2026-11-23T10:00:00+00:00", "2026-11-24T03:00:00+00:00"),
    ],
)
def test_schedule_forms(expr: str, after: str | None, expected: str | None) -> None:
    """5-field cron (crontab weekdays), 6-field cron with seconds, macros, `every` periods."""
    trigger = build_trigger(expr, key="k", timezone="UTC")
    if after is None:
        return
    now = datetime.fromisoformat(after)
    nxt = trigger.get_next_fire_time(None, now)
    assert nxt == datetime.fromisoformat(expected or "")


def test_crontab_weekdays_translate_to_names() -> None:
    """Day-of-week numbers follow crontab (Sunday 0 or 7), not APScheduler's Monday-first."""
    assert cron_weekdays("0") == "sun"
    assert cron_weekdays("0-2") == "sun,mon,tue"
    assert cron_weekdays("5-7") == "sun,fri,sat"
    assert cron_weekdays("*/2") == "sun,tue,thu,sat"
    assert cron_weekdays("mon-fri") == "mon,tue,wed,thu,fri"
    with pytest.raises(ValueError, match="outside"):
        cron_weekdays("8")


@pytest.mark.parametrize("bad", ["every 0s", "every soon", "* * *", "@fortnightly"])
def test_bad_expressions_are_refused(bad: str) -> None:
    """Nonsense schedules fail with a ConfigError instead of never running."""
    with pytest.raises(ConfigError, match=r"sources\.x\.schedule"):
        build_trigger(bad, key="sources.x.schedule")


def test_scheduler_runs_jobs_and_applies_changes() -> None:
    """Jobs fire through the injected function; `apply` adds, reschedules and removes jobs."""
    seen: list[str] = []
    lock = threading.Lock()

    def run(spec: JobSpec) -> None:
        with lock:
            seen.append(spec.id)

    sched = Scheduler(run, max_concurrent=2, heartbeat_interval=0.2)
    fast = JobSpec("backup:a", "backup", "every 0.2s", "sources.a.schedule", source="a")
    slow = JobSpec("backup:b", "backup", "0 0 1 1 *", "sources.b.schedule", source="b")
    sched.apply([fast, slow])
    sched.start()
    try:
        assert poll(lambda: seen.count("backup:a") >= 2)
        assert set(sched.next_runs()) == {"backup:a", "backup:b"}
        before = sched.next_runs()["backup:b"]
        sched.apply([slow])
        assert sched.next_runs() == {"backup:b": before}  # unchanged jobs keep their slot
        sched.run_at(slow)
        assert poll(lambda: "backup:b" in seen)
        assert poll(lambda: sched.heartbeat_age() < 1.0)
        assert not sched.stuck()
    finally:
        sched.shutdown()


def test_stuck_scheduler_is_detected_from_its_heartbeat() -> None:
    """Without heartbeats for three intervals the loop counts as stuck (the watchdog stops)."""
    now = [100.0]
    sched = Scheduler(
        lambda s: None, max_concurrent=1, heartbeat_interval=1.0, monotonic=lambda: now[0]
    )
    assert not sched.stuck()
    now[0] += 10.0
    assert sched.stuck()


def test_plan_at_a_given_time_uses_the_configured_timezone() -> None:
    """`daemon.timezone` is the zone cron fields are read in."""
    trig = build_trigger("0 2 * * *", key="k", timezone="Asia/Shanghai")
    nxt = trig.get_next_fire_time(None, datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    assert nxt is not None
    assert nxt.astimezone(UTC) == datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["0 3 * * *", "every 1d"])
def test_jitter_spreads_runs_within_the_window_after_the_slot(expr: str) -> None:
    """With `daemon.jitter: 10m` each run starts at its slot plus a random delay of at most
    ten minutes (so a hundred sources scheduled at 03:00 do not all start at once);
    without jitter it starts exactly at the slot."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    exact = build_trigger(expr, key="k", timezone="UTC").get_next_fire_time(None, now)
    assert exact is not None
    jittered = build_trigger(expr, key="k", timezone="UTC", jitter=600)
    fires = {jittered.get_next_fire_time(None, now) for _ in range(50)}
    assert len(fires) > 1
    assert all(f is not None and 0 <= (f - exact).total_seconds() <= 600 for f in fires)


def test_jobs_of_different_sources_run_concurrently_up_to_the_limit() -> None:
    """With `daemon.max_concurrent_jobs: 2`, backups of three sources due together run two
    at a time: two start side by side, the third starts only when one of them ends."""
    release = threading.Event()
    lock = threading.Lock()
    running: list[str] = []
    started: list[str] = []

    def run(spec: JobSpec) -> None:
        with lock:
            running.append(spec.id)
            started.append(spec.id)
        release.wait(30)
        with lock:
            running.remove(spec.id)

    sched = Scheduler(run, max_concurrent=2, heartbeat_interval=0.2)
    specs = [
        JobSpec(f"backup:{n}", "backup", "0 0 1 1 *", f"sources.{n}.schedule", source=n)
        for n in ("a", "b", "c")
    ]
    sched.apply(specs)
    sched.start()
    try:
        for spec in specs:
            sched.run_at(spec)
        assert poll(lambda: len(started) == 2)
        assert not poll(lambda: len(started) > 2, 0.5), "a third job started beyond the limit"
        release.set()
        assert poll(lambda: len(started) == 3 and not running)
    finally:
        release.set()
        sched.shutdown()
