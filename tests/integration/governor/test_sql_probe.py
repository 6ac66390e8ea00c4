"""The SQL probe against a real PostgreSQL: active connections and replay lag."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from recoveryd.config import load_config
from recoveryd.governor import build_governor
from recoveryd.governor.signals import CommandProbe
from tests.fixtures.nginx import wait_until
from tests.fixtures.postgres import PgServer

pytestmark = pytest.mark.integration


def test_db_connections_signal_counts_active_sessions(pg_server: PgServer, tmp_path: Path) -> None:
    """`governor.signals.db_connections` reads active sessions of the source's server through
    psql with the source's password file; a busy session raises the reading."""
    source = {
        "kind": "postgresql",
        "dsn": pg_server.dsn("postgres"),
        "password_file": str(pg_server.password_file),
        "targets": ["local"],
    }
    (tmp_path / "recoveryd.yaml").write_text(
        f"state_dir: {tmp_path}/state\n"
        f"encryption: {{key_file: {tmp_path}/k}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path}/s}}}}\n"
        f"sources: {{population: {json.dumps(source)}}}\n"
        "governor:\n"
        "  signals:\n"
        "    db_connections: {source: population, active: {elevated: 150, critical: 300}}\n"
    )
    gov = build_governor(load_config(tmp_path / "recoveryd.yaml"), None, None)
    [probe] = [p for p in gov._probes if isinstance(p, CommandProbe)]
    probe.measure()
    idle = probe.sample()
    assert set(idle) == {"db_connections", "replication_lag_s"}
    # a session of the same role (others' states need pg_monitor / pg_read_all_stats)
    busy = threading.Thread(
        target=_sleep_in_db, args=(pg_server.dsn("postgres", with_password=True),)
    )
    busy.start()
    try:
        wait_until(lambda: _measure(probe) >= idle["db_connections"] + 1, 20, "an active session")
    finally:
        busy.join(timeout=30)


def _sleep_in_db(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_sleep(3)")


def _measure(probe: CommandProbe) -> float:
    probe.measure()
    return probe.sample().get("db_connections", 0.0)
