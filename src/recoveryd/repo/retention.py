"""Retention policy: which snapshots to keep (restic `forget` semantics), as a pure function.

Per source, snapshots are walked newest first. `keep_last: n` keeps the n
newest. Each of `hourly`, `daily`, `weekly` (ISO week), `monthly`, `yearly`
keeps, for the n most recent periods that have a snapshot, the newest snapshot
of that period. `within: d` keeps every snapshot taken less than d before the
newest snapshot. A snapshot is kept if any rule keeps it. A policy with no rule
set keeps everything (an empty policy never deletes by accident), and the newest
snapshot of a source is always kept, whatever the rules say (`keep_last: 0` or
`within: 0s` never leave a source without a snapshot). Periods are computed in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    hourly: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None
    within: timedelta | None = None

    def periods(self) -> dict[str, int | None]:
        """How many periods each calendar rule keeps (hourly ... yearly)."""
        return {
            "hourly": self.hourly,
            "daily": self.daily,
            "weekly": self.weekly,
            "monthly": self.monthly,
            "yearly": self.yearly,
        }

    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.keep_last,
                self.hourly,
                self.daily,
                self.weekly,
                self.monthly,
                self.yearly,
                self.within,
            )
        )


@dataclass(frozen=True)
class Decision:
    id: str
    time: datetime
    keep: bool
    reasons: tuple[str, ...]  # e.g. ("last", "daily"); empty when removed


_Bucket = Callable[[datetime], tuple[int, ...]]

_BUCKETS: tuple[tuple[str, _Bucket], ...] = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
)


def apply(snapshots: Sequence[tuple[str, datetime]], policy: Policy) -> list[Decision]:
    """Decide for each (id, time) of ONE source; result newest first."""
    ordered = sorted(snapshots, key=lambda s: (s[1], s[0]), reverse=True)
    if policy.is_empty():
        return [Decision(i, t, True, ("no policy",)) for i, t in ordered]
    remaining: dict[str, int] = {}
    last_bucket: dict[str, tuple[int, ...] | None] = {}
    periods = policy.periods()
    for name, _ in _BUCKETS:
        count = periods[name]
        if count:
            remaining[name] = count
            last_bucket[name] = None
    keep_last = policy.keep_last or 0
    newest = ordered[0][1] if ordered else None
    out = []
    for index, (sid, t) in enumerate(ordered):
        reasons: list[str] = []
        if index < keep_last:
            reasons.append("last")
        for name, bucket in _BUCKETS:
            if remaining.get(name, 0) <= 0:
                continue
            value = bucket(t)
            if value != last_bucket[name]:
                last_bucket[name] = value
                remaining[name] -= 1
                reasons.append(name)
        if policy.within is not None and newest is not None and newest - t < policy.within:
            reasons.append("within")
        if index == 0 and not reasons:
            reasons.append("newest")
        out.append(Decision(sid, t, bool(reasons), tuple(reasons)))
    return out


def select_forget(
    snapshots: Sequence[tuple[str, str, datetime]],
    policies: Mapping[str, Policy],
    protect: Collection[str] = (),
) -> dict[str, list[str]]:
    """Source -> ids its policy drops, from (id, source, time) of one repository.

    Sources without a policy keep everything. Whatever the policy, the newest snapshot
    of each source and the ids in `protect` (the newest verified one) are kept.
    """
    by_source: dict[str, list[tuple[str, datetime]]] = {}
    for sid, source, t in snapshots:
        by_source.setdefault(source, []).append((sid, t))
    out: dict[str, list[str]] = {}
    for source, policy in policies.items():
        decisions = apply(by_source.get(source, []), policy)
        newest = decisions[0].id if decisions else None
        drop = [d.id for d in decisions if not d.keep and d.id != newest and d.id not in protect]
        if drop:
            out[source] = drop
    return out
