"""MariaDB binary logs streamed into the repository with `binlog-stream`, and a restore
to a moment between two dumps: the newest dump before it, then its binary logs replayed
up to that moment — into another database name, as an investigation would."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.mariadb import (
    MariadbServer,
    another_mariadb_server,
    binlog_deployment,
    table_checksums_mysql,
)
from tests.forkcli import run_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _next_second() -> datetime:
    """Wait until the wall clock enters a new second and return its start: binary log
    events carry whole seconds, so a recovery target must fall between them."""
    now = time.time()
    boundary = math.floor(now) + 1
    while time.time() < boundary:
        time.sleep(0.02)
    return datetime.fromtimestamp(boundary, UTC)


def _spool_holds(spool: Path, needle: bytes, deadline_s: float = 60) -> None:
    """Wait until the streamed binary logs in `spool` contain `needle`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if any(needle in p.read_bytes() for p in spool.glob("*.[0-9]*") if p.is_file()):
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never reached the binlog stream")


def test_restore_to_a_time_replays_binlogs_after_the_newest_dump(
    mariadb_server: MariadbServer, tmp_path: Path
) -> None:
    """Rows committed before T come back, rows after T and a table dropped after T do
    not; the dump taken after T is not used; the restore lands in a new database, where
    every table (one created from the binary logs alone) holds the rows it had at T."""
    srv = mariadb_server
    db = srv.create_database("pitr_registry")
    cli = binlog_deployment(srv, db, tmp_path)
    srv.sql(db, "create table citizens (id int primary key, name varchar(40))")
    srv.sql(db, "insert into citizens select seq, 'dumped' from seq_1_to_500")
    first = run_argv([*cli, "backup", "registry"])
    assert first.returncode == 0, first.stderr
    stream = subprocess.Popen([*cli, "binlog-stream", "registry"], stderr=subprocess.PIPE)
    restored = "pitr_restored"
    try:
        srv.sql(db, "insert into citizens select seq, 'before' from seq_501_to_2000")
        srv.sql(db, "create table ledger (id int primary key, entry varchar(40))")
        srv.sql(db, "insert into ledger select seq, md5(seq) from seq_1_to_300")
        at_target = table_checksums_mysql(srv, db)
        target = _next_second()
        _next_second()
        srv.sql(db, "insert into citizens select seq, 'after' from seq_2001_to_2500")
        srv.sql(db, "drop table citizens")
        srv.sql(db, "update ledger set entry = 'ransom'")
        _spool_holds(tmp_path / "state" / "binlog-stream" / "registry", b"ransom")
    finally:
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(120) == 0, stream.stderr.read() if stream.stderr else ""
    later = run_argv([*cli, "backup", "registry"])
    assert later.returncode == 0, later.stderr

    srv.drop_database(restored)
    done = subprocess.run(
        [
            *cli,
            *("restore", "registry", "--time", target.isoformat()),
            *("--to", srv.admin_dsn(restored), "--password-file", str(tmp_path / "admin.pw")),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    try:
        assert srv.sql(restored, "select count(*), max(id) from citizens") == [(2000, 2000)]
        assert srv.sql(restored, "select count(*) from citizens where name = 'after'") == [(0,)]
        assert table_checksums_mysql(srv, restored) == at_target
    finally:
        srv.drop_database(restored)
        srv.drop_database(db)


def _restore_to_time(cli: list[str], target: datetime, dest: str, password_file: Path) -> None:
    done = subprocess.run(
        [
            *cli,
            *("restore", "registry", "--time", target.isoformat()),
            *("--to", dest, "--password-file", str(password_file)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_restore_to_a_time_on_another_server(mariadb_server: MariadbServer, tmp_path: Path) -> None:
    """`restore --time T --to DSN` may name another MariaDB server: the dump and the
    binary logs streamed from the source's server are replayed there, under the source's
    database name, and every table holds the rows it had at T."""
    srv = mariadb_server
    db = srv.create_database("pitr_elsewhere")
    cli = binlog_deployment(srv, db, tmp_path)
    srv.sql(db, "create table citizens (id int primary key, name varchar(40))")
    srv.sql(db, "insert into citizens select seq, 'dumped' from seq_1_to_300")
    first = run_argv([*cli, "backup", "registry"])
    assert first.returncode == 0, first.stderr
    stream = subprocess.Popen([*cli, "binlog-stream", "registry"], stderr=subprocess.PIPE)
    try:
        srv.sql(db, "insert into citizens select seq, 'streamed' from seq_301_to_900")
        at_target = table_checksums_mysql(srv, db)
        target = _next_second()
        _next_second()
        srv.sql(db, "update citizens set name = 'ransom'")
        _spool_holds(tmp_path / "state" / "binlog-stream" / "registry", b"ransom")
    finally:
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(120) == 0, stream.stderr.read() if stream.stderr else ""
    try:
        with another_mariadb_server() as other:
            _restore_to_time(cli, target, other.admin_dsn(db), tmp_path / "admin.pw")
            assert table_checksums_mysql(other, db) == at_target
    finally:
        srv.drop_database(db)
