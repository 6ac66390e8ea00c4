"""Retention follows restic's `forget` rules: a table of policies and what they keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recoveryd.repo import Policy, apply_retention

T0 = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # a Monday evening


def _hourly_for_days(days: int) -> list[tuple[str, datetime]]:
    """One snapshot every 6 hours, newest at T0, for `days` days."""
    return [(f"s{i:03d}", T0 - timedelta(hours=6 * i)) for i in range(days * 4)]


def _kept(policy: Policy, snaps: list[tuple[str, datetime]]) -> list[str]:
    return [d.id for d in apply_retention(snaps, policy) if d.keep]


SNAPS = _hourly_for_days(800)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy(), len(SNAPS)),  # no rule: keep everything
        (Policy(keep_last=0), 1),  # the newest snapshot is always kept
        (Policy(keep_last=3), 3),
        (Policy(daily=7), 7),
        (Policy(weekly=4), 4),
        (Policy(monthly=12), 12),
        (Policy(yearly=3), 3),
        (Policy(hourly=5), 5),
        (Policy(keep_last=6, daily=14, weekly=8, monthly=12, yearly=3), None),
        (Policy(within=timedelta(days=2)), 8),
    ],
)
def test_policy_table(policy: Policy, expected: int | None) -> None:
    """Each rule keeps the newest snapshot of its last n periods; rules are unioned."""
    kept = _kept(policy, SNAPS)
    if expected is not None:
        assert len(kept) == expected
    else:
        union = set()
        for p in (
            Policy(keep_last=6),
            Policy(daily=14),
            Policy(weekly=8),
            Policy(monthly=12),
            Policy(yearly=3),
        ):
            union |= set(_kept(p, SNAPS))
        assert set(kept) == union


def test_daily_keeps_the_newest_of_each_day() -> None:
    """daily: n keeps the latest snapshot of each of the n most recent days with snapshots."""
    kept = _kept(Policy(daily=3), SNAPS)
    assert kept == ["s000", "s004", "s008"]  # 23:00 of each of the last three days


def test_weekly_uses_iso_weeks_and_skips_empty_periods() -> None:
    """Periods without snapshots do not use up the count."""
    snaps = [("new", T0), ("gap", T0 - timedelta(weeks=5)), ("older", T0 - timedelta(weeks=6))]
    assert _kept(Policy(weekly=2), snaps) == ["new", "gap"]


def test_reasons_and_order() -> None:
    """Decisions come newest first with the rules that kept each snapshot."""
    decisions = apply_retention(SNAPS[:8], Policy(keep_last=1, daily=2))
    assert decisions[0].reasons == ("last", "daily")
    assert decisions[4].reasons == ("daily",)
    assert not decisions[1].keep and decisions[1].reasons == ()


def test_within_is_relative_to_the_newest_snapshot() -> None:
    """within: keeps snapshots taken less than the duration before the newest one."""
    snaps = [("a", T0 - timedelta(days=30)), ("b", T0 - timedelta(days=31))]
    assert _kept(Policy(within=timedelta(days=1)), snaps) == ["a"]
