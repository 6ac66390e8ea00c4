"""RPO decisions with an injected clock: catch-up after downtime, urgency, overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recoveryd.daemon.rpo import SourceRpo, catch_up, due_soon, is_overdue

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_catch_up_runs_only_sources_past_their_rpo() -> None:
    """After downtime, a source whose last snapshot is older than its RPO runs once at start-up;
    sources within their RPO, and sources without an RPO, wait for their next slot."""
    sources = {
        "stale": SourceRpo("stale", 3600, NOW - timedelta(hours=30)),  # missed ~30 hourly slots
        "fresh": SourceRpo("fresh", 3600, NOW - timedelta(minutes=10)),
        "never": SourceRpo("never", 3600, None),
        "no-rpo": SourceRpo("no-rpo", None, NOW - timedelta(days=9)),
    }
    assert catch_up(sources, NOW) == ["never", "stale"]  # one entry each, not one per slot


def test_overdue_boundary() -> None:
    """Overdue means strictly older than the RPO."""
    src = SourceRpo("a", 60, NOW - timedelta(seconds=60))
    assert not is_overdue(src, NOW)
    assert is_overdue(src, NOW + timedelta(seconds=1))


def test_due_soon_when_waiting_would_break_the_rpo() -> None:
    """A deferred backup that would pass its RPO while waiting is due soon (runs throttled)."""
    src = SourceRpo("a", 3600, NOW - timedelta(minutes=50))
    assert not due_soon(src, NOW, wait_seconds=60)
    assert due_soon(src, NOW, wait_seconds=600)
    assert not due_soon(SourceRpo("b", None, None), NOW, 600)
