"""The canary measures RPO from the rows written before the fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recoveryd.drills.canary import CanaryWriter, rpo_seconds
from recoveryd.drills.models import Canary
from tests.fixtures.postgres import PgServer

pytestmark = pytest.mark.integration


def test_rows_written_after_the_fault_do_not_hide_the_data_lost(pg_server: PgServer) -> None:
    """When the canary's DSN follows the primary, it also writes to the promoted one after
    the fault; RPO is still the fault time minus the newest row written before the fault,
    not zero."""
    t0 = datetime(2026, 11, 23, 15, 0, 0, tzinfo=UTC)
    times = iter([t0, t0 + timedelta(seconds=1), t0 + timedelta(seconds=9)])
    fault = t0 + timedelta(seconds=6)
    writer = CanaryWriter(
        Canary(dsn=pg_server.admin_dsn(), table="canary_rpo_test"), "run-rpo", lambda: next(times)
    )
    writer.prepare()
    try:
        for _ in range(3):
            writer._write_one()
        assert writer.written == 3
        newest = writer.newest_surviving(before=fault)
        assert newest == t0 + timedelta(seconds=1)
        assert rpo_seconds(fault, newest) == 5.0
    finally:
        writer.stop()
