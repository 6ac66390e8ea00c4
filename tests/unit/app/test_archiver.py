"""What the daemon concludes from PostgreSQL's `pg_stat_archiver` (the answers are
built as the server's json_build_object writes them)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from recoveryd.app.archiver import ArchiverStatus, archiver_problem

NOW = "2026-12-03T10:00:00+00:00"


def _status(**changes: object) -> ArchiverStatus:
    doc: dict[str, object] = {
        "archive_mode": "on",
        "failed_count": 0,
        "last_failed_wal": None,
        "last_failed_time": None,
        "last_archived_wal": "000000010000000000000009",
        "last_archived_time": "2026-12-03T09:59:50.5+00:00",
        "current_wal": "00000001000000000000000A",
        "segment_size": 16 << 20,
        "now": NOW,
    }
    doc.update(changes)
    return ArchiverStatus.from_json(json.dumps(doc))


def test_a_healthy_archiver_is_no_problem() -> None:
    """Everything up to the segment being written is archived: nothing to say."""
    status = _status()
    assert status.pending_segments == 0 and not status.failing
    assert archiver_problem(status, 60, streamed=False) is None


def test_a_failure_after_the_last_success_is_reported_with_count_and_segment() -> None:
    """The last attempt failed (its time is after the last success): the sentence names
    the count, the segment and where to look."""
    status = _status(
        failed_count=7,
        last_failed_wal="00000001000000000000000A",
        last_failed_time="2026-12-03T09:59:58+00:00",
    )
    problem = archiver_problem(status, 600, streamed=False)
    assert problem is not None and status.failing
    assert "archive_command fails: 7 failures" in problem
    assert "00000001000000000000000A" in problem and "server's log" in problem


def test_an_old_failure_followed_by_success_is_no_problem() -> None:
    """A failure the archiver got past (a later segment archived) is history."""
    status = _status(failed_count=2, last_failed_time="2026-12-03T09:00:00+00:00")
    assert archiver_problem(status, 600, streamed=False) is None


@pytest.mark.parametrize(("limit", "expected"), [(5.0, True), (60.0, False)])
def test_segments_waiting_longer_than_the_limit_are_a_problem(limit: float, expected: bool) -> None:
    """Completed segments not archived for longer than the RPO are reported (a slow or
    stuck archive_command that does not fail); within the RPO they are not."""
    status = _status(current_wal="00000001000000010000000C")
    assert status.pending_segments == 0x100 + 0xC - 0x9 - 1
    problem = archiver_problem(status, limit, streamed=False)
    assert (problem is not None) is expected
    if problem is not None:
        assert f"{status.pending_segments} completed WAL segments wait" in problem


def test_archive_mode_off_is_a_problem_unless_the_wal_is_streamed() -> None:
    """Base backups without archived WAL recover to no point in time: archive_mode = off
    is reported, but not for a source whose WAL the daemon streams."""
    status = _status(archive_mode="off", last_archived_wal=None, last_archived_time=None)
    problem = archiver_problem(status, 600, streamed=False)
    assert problem is not None and "archive_mode is off" in problem
    assert archiver_problem(status, 600, streamed=True) is None


def test_a_standby_or_another_timeline_leaves_the_backlog_unknown() -> None:
    """On a standby (no current WAL) or across a timeline switch, no backlog is guessed."""
    assert _status(current_wal=None).pending_segments is None
    assert _status(current_wal="00000002000000000000000C").pending_segments is None
    assert _status().now == datetime.fromisoformat(NOW)
