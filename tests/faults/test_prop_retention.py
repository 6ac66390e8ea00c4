"""Property tests of the retention policy (hypothesis): whatever the policy and the
snapshots, the newest snapshot survives, every snapshot gets exactly one decision,
and each rule keeps what restic's `forget` semantics say it keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from recoveryd.repo import Policy, apply_retention
from tests.faults.conftest import Tally

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = ("keep_last", "hourly", "daily", "weekly", "monthly", "yearly", "within")
counts = st.one_of(st.none(), st.integers(0, 12))
policies = st.builds(
    Policy,
    keep_last=counts,
    hourly=counts,
    daily=counts,
    weekly=counts,
    monthly=counts,
    yearly=counts,
    within=st.one_of(st.none(), st.integers(0, 90 * 24).map(lambda h: timedelta(hours=h))),
)
snapshot_lists = st.lists(
    st.integers(0, 3 * 365 * 24 * 60).map(lambda m: T0 + timedelta(minutes=m)),
    min_size=1,
    max_size=60,
).map(lambda times: [(f"s{i:03d}", t) for i, t in enumerate(times)])


# Found by this test on the first campaign run (kept as fixed examples): `keep_last: 0`
# and `within: 0s`, which the configuration accepts, removed every snapshot of the source.
@example(snaps=[("s000", T0)], policy=Policy(keep_last=0))
@example(snaps=[("s000", T0)], policy=Policy(within=timedelta(0)))
@example(snaps=[("s000", T0), ("s001", T0 + timedelta(days=1))], policy=Policy(daily=0))
@given(snaps=snapshot_lists, policy=policies)
def test_the_newest_snapshot_is_never_removed(
    snaps: list[tuple[str, datetime]], policy: Policy, campaign: Tally
) -> None:
    """Whatever the policy (keep_last: 0, within: 0s included), the newest snapshot of a
    source is kept, and every snapshot is decided exactly once, newest first."""
    campaign.add("inputs")
    decisions = apply_retention(snaps, policy)
    assert sorted(d.id for d in decisions) == sorted(i for i, _ in snaps)
    newest = max(snaps, key=lambda s: (s[1], s[0]))
    assert decisions[0].id == newest[0]
    assert decisions[0].keep
    assert [d.time for d in decisions] == sorted((d.time for d in decisions), reverse=True)


@given(snaps=snapshot_lists, n=st.integers(1, 20))
def test_keep_last_keeps_exactly_the_n_newest(
    snaps: list[tuple[str, datetime]], n: int, campaign: Tally
) -> None:
    """keep_last: n alone keeps the n newest snapshots and removes the rest."""
    campaign.add("inputs")
    kept = [d.id for d in apply_retention(snaps, Policy(keep_last=n)) if d.keep]
    newest = sorted(snaps, key=lambda s: (s[1], s[0]), reverse=True)[:n]
    assert kept == [i for i, _ in newest]


@given(snaps=snapshot_lists, n=st.integers(1, 20))
def test_daily_keeps_the_newest_of_each_of_the_n_latest_days(
    snaps: list[tuple[str, datetime]], n: int, campaign: Tally
) -> None:
    """daily: n alone keeps, for each of the n most recent days with a snapshot, that
    day's newest snapshot, and nothing else."""
    campaign.add("inputs")
    kept = {d.id for d in apply_retention(snaps, Policy(daily=n)) if d.keep}
    by_day: dict[object, tuple[str, datetime]] = {}
    for sid, t in snaps:
        best = by_day.get(t.date())
        if best is None or (t, sid) > (best[1], best[0]):
            by_day[t.date()] = (sid, t)
    expected = {by_day[day][0] for day in sorted(by_day, reverse=True)[:n]}  # type: ignore[type-var]
    assert kept == expected


@given(snaps=snapshot_lists, policy=policies, rule=st.sampled_from(RULES))
def test_a_more_generous_rule_never_keeps_less(
    snaps: list[tuple[str, datetime]], policy: Policy, rule: str, campaign: Tally
) -> None:
    """Raising any one count (or widening `within`) keeps a superset of what was kept."""
    campaign.add("inputs")
    current = getattr(policy, rule)
    if rule == "within":
        wider = (current or timedelta(0)) + timedelta(days=1)
    else:
        wider = (current or 0) + 1
    generous = Policy(**{**policy.__dict__, rule: wider})
    kept = {d.id for d in apply_retention(snaps, policy) if d.keep}
    kept_more = {d.id for d in apply_retention(snaps, generous) if d.keep}
    if policy.is_empty():
        return  # the empty policy keeps everything, more than any rule
    assert kept <= kept_more


@given(snaps=snapshot_lists, days=st.integers(1, 400))
def test_within_keeps_everything_younger_than_the_window(
    snaps: list[tuple[str, datetime]], days: int, campaign: Tally
) -> None:
    """within: d keeps exactly the snapshots taken less than d before the newest."""
    campaign.add("inputs")
    window = timedelta(days=days)
    newest = max(t for _, t in snaps)
    kept = {d.id for d in apply_retention(snaps, Policy(within=window)) if d.keep}
    assert kept == {i for i, t in snaps if newest - t < window}
