"""Schedule slots in fleet mode: a run belongs to the latest time its schedule fired at or
before it started, the same on every member."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from recoveryd.daemon.fleetmode import Claim, slot_text
from recoveryd.daemon.schedule import EPOCH, JobSpec, build_trigger, slot_length, slot_of


def spec(schedule: str) -> JobSpec:
    return JobSpec("backup:s", "backup", schedule, "sources.s.schedule", source="s")


def test_a_fixed_period_counts_from_the_epoch() -> None:
    """`every 30s`: the slot is the start of the 30-second period the time falls in,
    whatever the moment each member started."""
    at = datetime(2026, 12, 3, 10, 0, 47, 500000, tzinfo=UTC)
    assert slot_of(spec("every 30s"), at) == datetime(2026, 12, 3, 10, 0, 30, tzinfo=UTC)
    assert slot_of(spec("every 30s"), at.replace(second=30, microsecond=0)) == at.replace(
        second=30, microsecond=0
    )


def test_a_cron_slot_is_its_latest_fire_time() -> None:
    """`0 */4 * * *` at 09:59 belongs to the 08:00 slot; `@daily` to midnight; a 6-field
    cron with seconds to its last second mark."""
    at = datetime(2026, 12, 3, 9, 59, 59, tzinfo=UTC)
    assert slot_of(spec("0 */4 * * *"), at, "UTC") == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert slot_of(spec("@daily"), at, "UTC") == datetime(2026, 12, 3, tzinfo=UTC)
    assert slot_of(spec("*/2 * * * * *"), at, "UTC") == at - timedelta(seconds=1)


def test_a_cron_slot_follows_the_configured_time_zone() -> None:
    """A daily 02:00 in Asia/Shanghai is 18:00 UTC the day before."""
    at = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    assert slot_of(spec("0 2 * * *"), at, "Asia/Shanghai") == datetime(2026, 12, 2, 18, tzinfo=UTC)


def test_aligned_periods_fire_on_slot_boundaries() -> None:
    """In fleet mode a fixed period's trigger fires at multiples of the period from the
    epoch, so every member fires together."""
    trigger = build_trigger("every 4s", key="k", aligned=True)
    now = datetime(2026, 12, 3, 10, 0, 1, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, now)
    assert fire is not None
    assert (fire - EPOCH).total_seconds() % 4 == 0


def test_a_claim_labels_the_manifest_with_its_slot_and_member() -> None:
    """The labels a fleet backup's manifest records (`extra`)."""
    slot = datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert slot_text(slot) == "2026-12-03T08:00:00Z"
    assert Claim("core-1", slot).labels() == {
        "fleet_slot": "2026-12-03T08:00:00Z",
        "fleet_member": "core-1",
    }


@pytest.mark.timeout(60)
def test_a_wait_on_a_claims_stop_ends_when_the_claim_is_lost() -> None:
    """The stop a fleet backup gets is waited on by its uploads that wait for bandwidth: a
    wait of an hour on it ends when the member fences itself (the claim is lost, from
    another thread), though the daemon's own cancel event stays clear."""
    shutdown = threading.Event()
    claim = Claim("core-1", datetime(2026, 12, 3, 8, tzinfo=UTC))
    stop = claim.cancel_event(shutdown)
    assert not stop.wait(0)
    fence = threading.Thread(target=claim.lost.set)
    fence.start()
    assert stop.wait(3600)
    fence.join()
    assert stop.is_set() and not shutdown.is_set()


def test_a_slot_lasts_until_the_next_fire_time() -> None:
    """How long a slot lasts (a slot record outlives a few of them): a fixed period, or the
    distance to the cron schedule's next fire time."""
    slot = datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert slot_length(spec("every 4s"), slot) == 4
    assert slot_length(spec("0 */4 * * *"), slot, "UTC") == 4 * 3600
    assert slot_length(spec("@daily"), datetime(2026, 12, 3, tzinfo=UTC), "UTC") == 86400
