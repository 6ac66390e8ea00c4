"""How a slot record is read back from its etcd value (the tooz/etcd adapter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from recoveryd.fleet import SlotRecord
from recoveryd.fleet.tooz_etcd import _record


def test_a_record_reads_back_as_written() -> None:
    """Result, member, end time and run number come back as the member wrote them."""
    ended = datetime(2026, 12, 3, 8, 0, 3, tzinfo=UTC)
    raw = json.dumps({"result": "failed", "member": "core-1", "ended": ended.isoformat(),
                      "run": 2})  # fmt: skip
    assert _record(raw.encode()) == SlotRecord("failed", "core-1", ended, 2)


def test_an_unreadable_record_still_counts_as_a_run() -> None:
    """The key exists only because a member wrote it when a run ended: a value that cannot
    be read still closes the slot (result and member `unknown`)."""
    assert _record(b"not json") == SlotRecord("unknown", "unknown")
    assert _record(b'{"ended": "yesterday"}') == SlotRecord("unknown", "unknown")
