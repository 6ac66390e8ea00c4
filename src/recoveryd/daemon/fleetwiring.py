"""Fleet mode wired into the daemon: the coordination adapter and the hooks `FleetMode`
calls back (the scheduled jobs, the sites of sources, the store's slot check)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from recoveryd.config import LoadedConfig
from recoveryd.daemon.fleetmode import FleetHooks, FleetMode, slot_text
from recoveryd.daemon.jobs import Operations
from recoveryd.daemon.metrics import DaemonMetrics
from recoveryd.daemon.notify import Notifier
from recoveryd.daemon.rpo import SourceRpo, is_overdue
from recoveryd.daemon.schedule import JobSpec, Scheduler, slot_length, slot_of
from recoveryd.drills.approvals import FLEET_MEMBER_ENV
from recoveryd.errors import ConfigError, RecoverydError
from recoveryd.fleet import open_coordination
from recoveryd.fleetconfig import member_name
from recoveryd.observe import get_logger
from recoveryd.state import StateStore

log = get_logger("recoveryd.daemon.fleet")


def build_fleet(
    config: Callable[[], LoadedConfig],
    *,
    member: str | None,
    state: StateStore,
    scheduler: Scheduler,
    notifier: Notifier,
    ops: Operations,
    clock: Callable[[], datetime],
    changed: Callable[[], None],
    metrics: DaemonMetrics,
) -> FleetMode:
    """This member's FleetMode from the configuration's `fleet` section (`member`: the
    --member or RECOVERYD_MEMBER override)."""
    cfg = config()
    fleet = cfg.config.fleet
    assert fleet is not None  # noqa: S101 - called only in fleet mode
    try:
        name = member_name(fleet, member)
    except ValueError as exc:
        raise ConfigError(str(exc), key="fleet.member") from None
    tz = cfg.config.daemon.timezone
    os.environ[FLEET_MEMBER_ENV] = name  # drill reports name the member as their operator

    def site(spec: JobSpec) -> str | None:
        src = config().config.sources.get(spec.source or "")
        return src.site if src is not None else None

    def taken(spec: JobSpec, slot: datetime) -> bool:
        source = spec.source or ""
        try:
            when = ops.slot_taken(config(), source, slot_text(slot))
        except RecoverydError as exc:  # the stores cannot say: the backup itself will
            log.warning("fleet_slot_check_failed", job=spec.id, error=exc.message)
            return False
        if when is None:
            return False
        known = metrics.sources().get(source)
        if known is None or known.last_snapshot is None or when > known.last_snapshot:
            metrics.record_success(source, when)  # another member made it: not overdue
        return True

    def overdue(spec: JobSpec) -> bool:
        """The catch-up rule: a backup's source past its RPO (by what this member knows)."""
        src = config().config.sources.get(spec.source or "")
        if spec.kind != "backup" or src is None or spec.source is None:
            return False
        known = metrics.sources().get(spec.source)
        last = known.last_snapshot if known is not None else None
        return is_overdue(SourceRpo(spec.source, src.rpo, last), clock())

    hooks = FleetHooks(
        specs=lambda: scheduler.specs,
        site=site,
        slot_of=lambda spec, at: slot_of(spec, at, tz),
        taken=taken,
        takeover=lambda spec: scheduler.run_at(spec, tag="takeover"),
        slot_length=lambda spec, slot: slot_length(spec, slot, tz),
        overdue=overdue,
        fenced=metrics.fleet_fenced.labels(name).inc,
        alert=notifier.notify,
        changed=changed,
    )
    coord = open_coordination(
        fleet.coordination, group=fleet.group, member=name, lease=fleet.lease,
        serves=fleet.serves,
    )  # fmt: skip
    log.info("fleet_member", member=name, group=fleet.group, serves=fleet.serves)
    return FleetMode(coord, hooks, lease=fleet.lease, state=state, clock=clock)


def start_fleet(fleet: FleetMode) -> None:
    """Join the group, then refresh the view three times per lease and fence this member
    when a refresh is not answered in time (daemon/fence.py)."""
    fleet.start()
    fleet.keep()


def publish(fleet: FleetMode, metrics: DaemonMetrics, cfg: LoadedConfig) -> None:
    """The fleet gauges of this member, and the RPO of the sources whose backup it owns
    (the others' are watched by their owners: no overdue alert from every member)."""
    view = fleet.view()
    metrics.fleet_owned.labels(fleet.member).set(len(view.owned_jobs))
    metrics.fleet_isolated.labels(fleet.member).set(1 if view.isolated else 0)
    owned = {job.split(":", 1)[1] for job in view.owned_jobs if job.startswith("backup:")}
    known = metrics.sources()
    metrics.set_sources(
        {
            name: SourceRpo(
                name,
                src.rpo if name in owned else None,
                known[name].last_snapshot if name in known else None,
            )
            for name, src in cfg.config.sources.items()
        }
    )
