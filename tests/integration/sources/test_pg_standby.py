"""PostgreSQL source reading a hot standby (streaming replica of the `pg_server` primary)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from recoveryd.sources.local import LocalRunner
from recoveryd.sources.postgresql import PostgresSource
from tests.fixtures.common import stop_server
from tests.fixtures.postgres import (
    AS_POSTGRES,
    PG_BIN,
    PgServer,
    free_port,
    populate_registry,
    table_checksums,
)
from tests.integration.sources.helpers import read_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def standby_port(pg_server: PgServer) -> Iterator[int]:
    """A hot standby of pg_server made with pg_basebackup, on its own free port."""
    root = Path(tempfile.mkdtemp(prefix="recoveryd-pg-standby-"))
    try:
        yield from _run_standby(pg_server, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run_standby(pg_server: PgServer, root: Path) -> Iterator[int]:
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    env = dict(os.environ, PGPASSWORD=pg_server.admin_password)
    subprocess.run(
        [
            *("runuser", "-u", "postgres", "--", str(PG_BIN / "pg_basebackup")),
            *("-h", pg_server.host, "-p", str(pg_server.port), "-U", "postgres"),
            *("-D", str(data), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(PG_BIN / "postgres"),
            *("-D", str(data), "-p", str(port), "-k", str(root)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "hot_standby=on"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **AS_POSTGRES,
    )
    try:
        deadline = time.monotonic() + 60
        dsn = f"host=127.0.0.1 port={port} dbname=postgres user=postgres"
        while True:
            assert proc.poll() is None, "standby exited"
            with (
                contextlib.suppress(psycopg.OperationalError),
                psycopg.connect(dsn, password=pg_server.admin_password, connect_timeout=2),
            ):
                break
            assert time.monotonic() < deadline, "standby did not start"
            time.sleep(0.05)
        yield port
    finally:
        stop_server(proc, signal.SIGINT, 30)  # fast shutdown: no waiting for clients


def test_snapshot_of_a_standby_records_the_replay_lsn(
    pg_server: PgServer, standby_port: int
) -> None:
    """On a hot standby the snapshot is exported there, the consistency point is the
    replayed WAL position (marked standby), and the dump restores to the same rows."""
    db = pg_server.create_database("standby_src")
    populate_registry(pg_server.dsn(db, with_password=True), 500)
    with psycopg.connect(pg_server.admin_dsn(db), autocommit=True) as conn:
        target_lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]  # type: ignore[index]
    standby = f"host=127.0.0.1 port={standby_port} dbname={db} user=backup"
    deadline = time.monotonic() + 60
    while True:  # wait until the standby has replayed the population
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(standby, password=pg_server.password) as conn,
        ):
            row = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target_lsn,)
            ).fetchone()
            if row and row[0]:
                break
        assert time.monotonic() < deadline, "standby did not catch up"
        time.sleep(0.05)
    src = PostgresSource("population", standby, runner=LocalRunner(), password=pg_server.password)
    reader = src.snapshot()
    data = read_all(reader)
    assert reader.info.consistency["standby"] == "true"
    assert "/" in reader.info.consistency["lsn"]
    pg_server.drop_database("standby_restored")
    src.restore(io.BytesIO(data), pg_server.admin_dsn("standby_restored"), reader.info)
    assert table_checksums(pg_server.admin_dsn("standby_restored")) == table_checksums(
        pg_server.admin_dsn(db)
    )
