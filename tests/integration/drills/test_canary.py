"""The canary measures RPO as the acknowledged writes made before the fault that were lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from recoveryd.drills.canary import CanaryWriter, rpo_seconds
from recoveryd.drills.models import Canary
from tests.fixtures.postgres import PgServer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 15, 0, 0, tzinfo=UTC)
FAULT = T0 + timedelta(seconds=6)


def _writer(pg_server: PgServer, table: str) -> CanaryWriter:
    """A canary that writes rows stamped T0, T0+1 s (before the fault) and T0+9 s (after)."""
    times = iter([T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=9)])
    writer = CanaryWriter(
        Canary(dsn=pg_server.admin_dsn(), table=table), "run-rpo", lambda: next(times)
    )
    writer.prepare()
    with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
        conn.execute(f"DELETE FROM {table}")
    for _ in range(3):
        writer._write_one()
    assert writer.written == 3
    return writer


def test_every_acknowledged_write_surviving_is_rpo_zero(pg_server: PgServer) -> None:
    """When every write the primary acknowledged before the fault is on the new primary, no
    data was lost: RPO is 0, not the time between the last write and the fault."""
    writer = _writer(pg_server, "canary_rpo_zero")
    try:
        acked = writer.newest_acknowledged(before=FAULT)
        newest = writer.newest_surviving(before=FAULT)
        assert acked == newest == T0 + timedelta(seconds=1)
        assert rpo_seconds(acked, newest) == 0.0
    finally:
        writer.stop()


def test_a_lost_acknowledged_write_is_the_data_lost(pg_server: PgServer) -> None:
    """When the newest acknowledged write before the fault is missing on the new primary, RPO
    is the span from the newest surviving row to it; rows written after the fault (a DSN that
    follows the primary reaches the promoted one) do not hide the loss."""
    writer = _writer(pg_server, "canary_rpo_lost")
    try:
        with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
            conn.execute(
                "DELETE FROM canary_rpo_lost WHERE written_at = %s", (T0 + timedelta(seconds=1),)
            )
        acked = writer.newest_acknowledged(before=FAULT)
        newest = writer.newest_surviving(before=FAULT)
        assert newest == T0
        assert rpo_seconds(acked, newest) == 1.0
    finally:
        writer.stop()
