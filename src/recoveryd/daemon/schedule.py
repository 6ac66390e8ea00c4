"""APScheduler wiring: which jobs the configuration asks for, and when they fire.

`plan_jobs` turns the configuration into `JobSpec`s (one per source backup
schedule, verify schedule, restore drill, drill playbook, and the prune), and
validates every schedule expression with its key path. `Scheduler` feeds them
to an APScheduler `BackgroundScheduler` with one instance per job at a time,
coalesced missed runs, optional jitter, and a worker pool bounded by
`daemon.max_concurrent_jobs`. What a job does is the caller's `run` function.

Schedule expressions: 5-field cron (`*/15 * * * *`, day of week 0/7 = Sunday
as in crontab), 6-field cron with seconds first (`*/2 * * * * *`), `@hourly`,
`@daily`, `@weekly`, `@monthly`, or a fixed period `every 30s` / `every 4h`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from recoveryd.config import Config, LoadedConfig
from recoveryd.errors import ConfigError
from recoveryd.units import parse_duration

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
INTERNAL_EXECUTOR = "internal"


@dataclass(frozen=True)
class JobSpec:
    """One scheduled activity of the configuration."""

    id: str  # backup:NAME, verify:NAME, restore_drill:NAME, drill:N:PLAYBOOK, prune, replicate
    kind: str  # backup | verify | restore_drill | drill | prune | replicate
    schedule: str
    key: str  # the configuration key path of the schedule, for error messages
    source: str | None = None
    priority: str = "low"
    playbook: str | None = None
    vars: Mapping[str, str] = field(default_factory=dict)
    read_data: bool | str = False


def plan_jobs(config: Config) -> list[JobSpec]:
    """Every scheduled job the configuration asks for, validated (ConfigError otherwise)."""
    jobs: list[JobSpec] = []
    for name, src in config.sources.items():
        if src.schedule:
            jobs.append(
                JobSpec(
                    f"backup:{name}", "backup", src.schedule, f"sources.{name}.schedule",
                    source=name, priority=src.priority,
                )
            )  # fmt: skip
        if src.verify is not None:
            jobs.append(
                JobSpec(
                    f"verify:{name}", "verify", src.verify.schedule,
                    f"sources.{name}.verify.schedule", source=name,
                    read_data=src.verify.read_data,
                )
            )  # fmt: skip
        if src.restore_drill is not None and src.restore_drill.schedule:
            jobs.append(
                JobSpec(
                    f"restore_drill:{name}", "restore_drill", src.restore_drill.schedule,
                    f"sources.{name}.restore_drill.schedule", source=name,
                )
            )  # fmt: skip
    for i, drill in enumerate(config.drills):
        stem = drill.playbook.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")
        jobs.append(
            JobSpec(
                f"drill:{i}:{stem}", "drill", drill.schedule, f"drills.{i}.schedule",
                playbook=drill.playbook, vars=dict(drill.vars),
            )
        )  # fmt: skip
    if config.daemon.prune_schedule and config.sources:
        jobs.append(
            JobSpec("prune", "prune", config.daemon.prune_schedule, "daemon.prune_schedule")
        )
    replicated = any(len(s.targets) > 1 for s in config.sources.values())
    if config.daemon.replicate_schedule and replicated:
        jobs.append(
            JobSpec(
                "replicate", "replicate", config.daemon.replicate_schedule,
                "daemon.replicate_schedule",
            )
        )  # fmt: skip
    tz = config.daemon.timezone
    for job in jobs:
        build_trigger(job.schedule, key=job.key, timezone=tz)
    return jobs


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def build_trigger(
    expr: str,
    *,
    key: str,
    timezone: str | None = None,
    jitter: float = 0.0,
    aligned: bool = False,
) -> BaseTrigger:
    """The APScheduler trigger of a schedule expression; ConfigError naming `key` otherwise.
    `aligned`: a fixed period counts from the Unix epoch (fleet mode: every member has the
    same slots), not from the moment the job is added."""
    text = " ".join(expr.split())
    text = _MACROS.get(text, text)
    jit = int(jitter) or None
    try:
        if text.startswith(("every ", "@every ")):
            seconds = parse_duration(text.split(" ", 1)[1])
            if seconds <= 0:
                raise ValueError("the period must be longer than zero")
            start = EPOCH if aligned else None
            return IntervalTrigger(seconds=seconds, timezone=timezone, jitter=jit, start_date=start)
        fields = text.split(" ")
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ValueError("expected 5 cron fields (or 6 with seconds first), or `every 30s`")
        second, minute, hour, day, month, dow = fields
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month,
            day_of_week=cron_weekdays(dow), timezone=timezone, jitter=jit,
        )  # fmt: skip
    except (ValueError, TypeError, LookupError) as exc:
        raise ConfigError(f'schedule "{expr}" is invalid: {exc}', key=key) from exc


_LOOK_BACK = (2.0, 60.0, 3600.0, 86400.0, 32 * 86400.0, 367 * 86400.0, 8 * 367 * 86400.0)


def slot_of(spec: JobSpec, at: datetime, timezone: str | None = None) -> datetime:
    """The schedule slot `at` falls in: the latest time the job's schedule fires at or
    before `at` (a fixed period counted from the Unix epoch), in UTC. A run belongs to the
    slot in which it started, whenever the scheduler dispatched it."""
    text = " ".join(spec.schedule.split())
    if text.startswith(("every ", "@every ")):
        period = parse_duration(text.split(" ", 1)[1])
        start = (at - EPOCH).total_seconds() // period * period
        return EPOCH + timedelta(seconds=start)
    trigger = build_trigger(spec.schedule, key=spec.key, timezone=timezone)
    for back in _LOOK_BACK:
        fire = trigger.get_next_fire_time(None, at - timedelta(seconds=back))
        if fire is None or fire > at:
            continue
        while True:
            nxt = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if nxt is None or nxt > at:
                slot: datetime = fire.astimezone(UTC)
                return slot
            fire = nxt
    return EPOCH  # fires less than once in eight years: one slot


def slot_length(spec: JobSpec, slot: datetime, timezone: str | None = None) -> float:
    """Seconds from `slot` to the job's next slot (a day when its schedule never fires
    again)."""
    trigger = build_trigger(spec.schedule, key=spec.key, timezone=timezone, aligned=True)
    fire = trigger.get_next_fire_time(None, slot + timedelta(seconds=1))
    return (fire - slot).total_seconds() if fire is not None else 86400.0


def cron_weekdays(field_text: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) in APScheduler's terms (names).

    APScheduler numbers Monday as 0; crontab numbers Sunday as 0. Names are
    unambiguous in both, so numeric parts are expanded to names.
    """
    if field_text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field_text.lower().split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ValueError(f"day-of-week step {step_text} must be positive")
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            lo, hi = _weekday(a), _weekday(b, end=True)
        else:
            lo = hi = _weekday(rng)
            if step_text:
                hi = 6
        if lo > hi:
            raise ValueError(f"day-of-week range {rng} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _weekday(text: str, *, end: bool = False) -> int:
    if text.isdigit():
        value = int(text)
        if not 0 <= value <= 7:
            raise ValueError(f"day of week {value} is outside 0-7")
        return value if end else value % 7
    if text[:3] in _DAY_NAMES:
        return _DAY_NAMES.index(text[:3])
    raise ValueError(f"{text!r} is not a day of week")


class Scheduler:
    """APScheduler running `run(spec)` for each job, at most one instance per job at a time."""

    def __init__(
        self,
        run: Callable[[JobSpec], None],
        *,
        max_concurrent: int,
        timezone: str | None = None,
        jitter: float = 0.0,
        heartbeat_interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        aligned: bool = False,
    ) -> None:
        self._run = run
        self._aligned = aligned
        self._timezone = timezone
        self._jitter = jitter
        self._monotonic = monotonic
        self.heartbeat_interval = heartbeat_interval
        self._beat = monotonic()
        self._lock = threading.Lock()
        self._specs: dict[str, JobSpec] = {}
        kwargs: dict[str, Any] = {
            "executors": {
                "default": ThreadPoolExecutor(max_concurrent),
                INTERNAL_EXECUTOR: ThreadPoolExecutor(2),
            },
            "job_defaults": {"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        }
        if timezone:
            kwargs["timezone"] = timezone
        self._sched = BackgroundScheduler(**kwargs)
        self._sched.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=heartbeat_interval),
            id="internal:heartbeat",
            executor=INTERNAL_EXECUTOR,
        )

    def _heartbeat(self) -> None:
        with self._lock:
            self._beat = self._monotonic()

    def heartbeat_age(self) -> float:
        """Seconds since the scheduler loop last dispatched its heartbeat job."""
        with self._lock:
            return max(0.0, self._monotonic() - self._beat)

    def stuck(self) -> bool:
        """True when the loop missed three heartbeats (or its thread died)."""
        thread = getattr(self._sched, "_thread", None)
        if self._sched.running and thread is not None and not thread.is_alive():
            return True
        return self.heartbeat_age() > 3 * self.heartbeat_interval + 1.0

    def apply(self, specs: list[JobSpec], *, jitter: float | None = None) -> None:
        """Make the scheduled jobs exactly `specs`: new ones added, changed ones rescheduled,
        vanished ones removed. Running instances finish undisturbed."""
        jitter_changed = jitter is not None and jitter != self._jitter
        if jitter is not None:
            self._jitter = jitter
        wanted = {s.id: s for s in specs}
        for job_id in set(self._specs) - set(wanted):
            self._sched.remove_job(job_id)
        for job_id, spec in wanted.items():
            if self._specs.get(job_id) == spec and not jitter_changed:
                continue  # unchanged: keep its next run (an `every 4h` is not restarted)
            trigger = build_trigger(
                spec.schedule, key=spec.key, timezone=self._timezone, jitter=self._jitter,
                aligned=self._aligned,
            )  # fmt: skip
            self._sched.add_job(
                self._run, trigger, args=[spec], id=job_id, name=spec.id, replace_existing=True
            )
        self._specs = wanted

    def run_at(self, spec: JobSpec, when: datetime | None = None, *, tag: str = "now") -> None:
        """Run `spec` once at `when` (now when None), besides its schedule (catch-up, retry)."""
        self._sched.add_job(
            self._run,
            DateTrigger(run_date=when, timezone=self._timezone) if when else None,
            args=[spec],
            id=f"{spec.id}#{tag}",
            name=spec.id,
            replace_existing=True,
        )

    def add_internal(self, job_id: str, func: Callable[[], None], seconds: float) -> None:
        """A housekeeping job (monitoring, state file) on its own small pool."""
        self._sched.add_job(
            func,
            IntervalTrigger(seconds=seconds),
            id=f"internal:{job_id}",
            executor=INTERNAL_EXECUTOR,
            replace_existing=True,
        )

    def next_runs(self) -> dict[str, datetime | None]:
        """Next fire time of every scheduled (non-internal) job."""
        out: dict[str, datetime | None] = {}
        for job in self._sched.get_jobs():
            if job.id.startswith("internal:"):
                continue
            when = getattr(job, "next_run_time", None)
            prev = out.get(job.name)
            if job.name not in out or (when is not None and (prev is None or when < prev)):
                out[job.name] = when
        return out

    @property
    def specs(self) -> dict[str, JobSpec]:
        return dict(self._specs)

    def start(self) -> None:
        self._sched.start()

    def pause(self) -> None:
        """Stop dispatching new work (shutdown begins)."""
        if self._sched.running:
            self._sched.pause()

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)


def plan_config(cfg: LoadedConfig) -> list[JobSpec]:
    """The jobs of `cfg`; a bad schedule is reported with the file and line it is on."""
    try:
        return plan_jobs(cfg.config)
    except ConfigError as exc:
        raise cfg.document.locate(exc) from None
