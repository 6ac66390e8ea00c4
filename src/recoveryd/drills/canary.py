"""The canary: timestamped rows written to the primary during a drill, to measure RPO.

Every `every` seconds a row (run id, the runner's clock) is inserted into
`canary.table` on `canary.dsn` (PostgreSQL). Writes fail while the primary is
down; that is expected and only counted. After recovery the newest row of
this run written before the fault is read from the new primary
(`canary.read_from`, default the same DSN). RPO is the span of acknowledged
writes made before the outage began that are missing there: 0 when every one
of them survived, None when none did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import psycopg
from psycopg import sql as pgsql

from recoveryd.drills.models import Canary


class CanaryWriter:
    def __init__(self, canary: Canary, run_id: str, clock: Callable[[], datetime]) -> None:
        self.canary = canary
        self.run_id = run_id
        self.clock = clock
        self.written = 0
        self.failed = 0
        self.last_written: datetime | None = None
        self.acknowledged: list[datetime] = []  # when each acknowledged row was written
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="drill-canary")
        self._conn: psycopg.Connection | None = None
        self._table = pgsql.Identifier(canary.table)

    def prepare(self) -> None:
        """Create the canary table on the primary (before the steps run)."""
        with psycopg.connect(self.canary.dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                pgsql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                    "run_id text NOT NULL, written_at timestamptz NOT NULL)"
                ).format(self._table)
            )

    def start(self, settle: float = 10.0) -> bool:
        """Start writing; waits (up to `settle` s) for the first row, so that the fault
        never comes before the canary wrote anything. False when none was written."""
        self._thread.start()
        return self._first.wait(settle)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if self._conn is not None:
            self._conn.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._write_one()
            self._stop.wait(self.canary.every)

    def _write_one(self) -> None:
        at = self.clock()
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.canary.dsn, autocommit=True, connect_timeout=2)
            self._conn.execute(
                pgsql.SQL("INSERT INTO {} (run_id, written_at) VALUES (%s, %s)").format(
                    self._table
                ),
                (self.run_id, at),
            )
        except psycopg.Error:
            self.failed += 1
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return
        self.written += 1
        self.last_written = at
        self.acknowledged.append(at)
        self._first.set()

    def newest_surviving(self, before: datetime) -> datetime | None:
        """The newest row of this run written at or before `before` (the fault) that is on
        the new primary (raises psycopg.Error when unreachable).

        Rows written after the fault (a DSN that follows the primary reaches the promoted
        one) say nothing about what the fault lost, so they are not counted.
        """
        dsn = self.canary.read_from or self.canary.dsn
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                pgsql.SQL(
                    "SELECT max(written_at) FROM {} WHERE run_id = %s AND written_at <= %s"
                ).format(self._table),
                (self.run_id, before),
            ).fetchone()
        return row[0] if row and row[0] is not None else None

    def newest_acknowledged(self, before: datetime) -> datetime | None:
        """The newest row the primary acknowledged that was written at or before `before`."""
        return max((t for t in self.acknowledged if t <= before), default=None)


def rpo_seconds(acknowledged: datetime | None, surviving: datetime | None) -> float | None:
    """The data lost: from the newest surviving row to the newest acknowledged one before the
    fault. 0 when the newest acknowledged row survived (nothing acknowledged was lost); 0 when
    nothing was acknowledged; None when rows were acknowledged and none survived."""
    if acknowledged is None:
        return 0.0
    if surviving is None:
        return None
    return max(0.0, (acknowledged - surviving).total_seconds())
