"""Continuous WAL archiving on a real PostgreSQL 15: `archive_command` runs
`recoveryd wal-push` as the `postgres` OS user, `restore_command` runs `recoveryd
wal-get`, and a base backup plus the archive recover the cluster to a chosen moment —
before rows were written and a table was dropped. The commands the tests run themselves
fork from the session's warm interpreter (tests/forkcli.py), except `restore`: with
`--time` it writes the path of the executable that runs it into restore_command."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from recoveryd.repo import Repository, load_master_key
from recoveryd.repo.chunker import COMPRESSION_LZ4
from recoveryd.stores.filesystem import FilesystemStore
from tests.fixtures.pgarchive import (
    Archive,
    archived_through,
    switch,
    temporary_archive,
    wait_promoted,
)
from tests.fixtures.pgcluster import PG_BIN, as_postgres
from tests.fixtures.postgres import free_port, table_checksums
from tests.fixtures.sshd import SshServer
from tests.forkcli import run_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def archive() -> Iterator[Archive]:
    with temporary_archive("recoveryd-wal-", also=["restored"]) as a:
        yield a


def test_recovery_to_a_time_restores_exactly_what_was_committed_before_it(archive: Archive) -> None:
    """Rows committed before the recovery target are all there; rows written after it and
    a table dropped after it are not: the archive pushed by `wal-push` and fetched by
    `wal-get` replays exactly to the target, and the server promotes."""
    a = archive
    a.sql(a.port, "create table citizens (id int primary key, name text)")
    base = a.root / "base"
    subprocess.run(
        as_postgres(
            str(PG_BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres"),
            *("-D", str(base), "-X", "none", "-c", "fast"),
        ),
        check=True,
        capture_output=True,
    )
    a.sql(a.port, "insert into citizens select g, 'before ' || g from generate_series(1, 5000) g")
    ((target,),) = a.sql(a.port, "select clock_timestamp()")
    a.sql(a.port, "insert into citizens select g, 'after ' || g from generate_series(5001, 6000) g")
    a.sql(a.port, "create table ledger as select 1 as x")
    a.sql(a.port, "drop table citizens")
    archived_through(a, switch(a))

    restored = a.root / "restored"
    shutil.copytree(base, restored)
    with (restored / "postgresql.conf").open("a") as conf:
        conf.write(
            "\narchive_mode = off\n"
            f"restore_command = '{a.command('wal-get', 'registry', '%f', '%p')}'\n"
            f"recovery_target_time = '{target.isoformat()}'\n"
            "recovery_target_action = 'promote'\n"
        )
    (restored / "recovery.signal").touch()
    subprocess.run(["chown", "-R", "postgres:postgres", str(restored)], check=True)
    restored.chmod(0o700)
    port = free_port()
    a.start(restored, port)
    wait_promoted(a, port)
    rows = a.sql(port, "select count(*), min(id), max(id) from citizens")
    assert rows == [(5000, 1, 5000)]
    assert a.sql(port, "select to_regclass('ledger')") == [(None,)]


def test_a_segment_not_archived_is_exit_1_and_a_damaged_one_exit_3(archive: Archive) -> None:
    """`wal-get` of a segment never archived exits 1 (PostgreSQL ends recovery there);
    of a damaged object exits 3 and writes nothing where PostgreSQL would read it."""
    a = archive
    segment = switch(a)
    archived_through(a, segment)
    dest = a.root / "fetched"
    missing = subprocess.run(
        [
            str(a.exe),
            "--config",
            str(a.config),
            "wal-get",
            "registry",
            "0000000100000000000000FF",
            str(dest),
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1, missing.stderr
    assert "not archived" in missing.stderr and "Traceback" not in missing.stderr
    obj = a.store / "wal" / "registry" / segment
    blob = bytearray(obj.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    obj.write_bytes(bytes(blob))
    damaged = subprocess.run(
        [str(a.exe), "--config", str(a.config), "wal-get", "registry", segment, str(dest)],
        capture_output=True,
        text=True,
    )
    assert damaged.returncode == 3, damaged.stderr
    assert not dest.exists()


def test_restore_to_a_time_from_recoveryd_base_backups(archive: Archive) -> None:
    """`recoveryd backup` of a `mode: physical` source streams a base backup into the
    repository; `status --json` shows the window it can be recovered to and the archive
    lag; `recoveryd restore SOURCE --time T --to DIR` picks the newest one before T,
    writes the recovery settings, and the server started on DIR holds exactly the rows
    committed before T — not the rows written later, nor the damage done after: every
    table's rows are those it had at T."""
    a = archive
    a.sql(a.port, "create table citizens (id int primary key, name text)")
    a.sql(a.port, "insert into citizens select g, 'first ' || g from generate_series(1, 100) g")
    cli = [str(a.exe), "--config", str(a.config)]
    first = run_argv([*cli, "--json", "backup", "registry"])
    assert first.returncode == 0, first.stderr
    a.sql(a.port, "insert into citizens select g, 'before ' || g from generate_series(101, 3000) g")
    a.sql(a.port, "create table ledger as select g, md5(g::text) from generate_series(1, 500) g")
    at_target = table_checksums(a.dsn(a.port))
    ((target,),) = a.sql(a.port, "select clock_timestamp()")
    a.sql(a.port, "update citizens set name = 'ransom'")
    a.sql(a.port, "delete from ledger where g % 2 = 0")
    a.sql(a.port, "drop table citizens")
    archived_through(a, switch(a))
    later = run_argv([*cli, "backup", "registry"])
    assert later.returncode == 0, later.stderr  # after the target: must not be chosen
    status = run_argv([*cli, "--json", "status"])
    assert status.returncode == 0, status.stderr
    entry = json.loads(status.stdout)["sources"]["registry"]
    window = entry["recoverable"]
    assert window["from"] is not None and window["to"] is not None
    assert window["from"] <= window["to"]
    assert isinstance(entry["archive_lag_s"], float | int)

    restored = a.root / "restored"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "recoveryd", "--config", str(a.config), "--json"),
            *("restore", "registry", "--time", target.isoformat(), "--to", str(restored)),
            *("--cmd", str(a.exe)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (restored / "recovery.signal").exists()
    assert "wal-get registry %f %p" in (restored / "postgresql.auto.conf").read_text()
    port = free_port()
    a.start(restored, port)
    wait_promoted(a, port)
    assert a.sql(port, "select count(*), max(id) from citizens") == [(3000, 3000)]
    assert a.sql(port, "select count(*) from citizens where name = 'ransom'") == [(0,)]
    assert table_checksums(a.dsn(port)) == at_target
    assert a.sql(port, "show archive_mode") == [("off",)]


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_a_base_backup_restores_on_its_own(archive: Archive, compression: str) -> None:
    """A base backup restored with `restore SNAPSHOT --to DIR` (no point in time) starts
    as a consistent cluster by itself: the WAL it needs is inside it. With the source's
    `compression: lz4` its chunks are LZ4, they pass `verify --read-data`, and the
    cluster restores the same."""
    a = archive
    doc = yaml.safe_load(a.config.read_text())
    doc["sources"]["registry"]["compression"] = compression
    a.config.write_text(yaml.safe_dump(doc))
    a.sql(a.port, "create table citizens as select g as id from generate_series(1, 2000) g")
    cli = [str(a.exe), "--config", str(a.config)]
    backup = run_argv([*cli, "--json", "backup", "registry"])
    assert backup.returncode == 0, backup.stderr
    listing = run_argv([*cli, "--json", "snapshots"])
    (snap,) = [s["id"] for s in json.loads(listing.stdout)]
    verified = run_argv([*cli, "verify", "--read-data", snap])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    repo = Repository.open(
        FilesystemStore(a.store, "local"), load_master_key(a.root / "master.key")
    )
    chunk_markers = {repo.chunks.read_payload(c.id)[0] for c in repo.manifest(snap).chunks}
    assert (COMPRESSION_LZ4 in chunk_markers) == (compression == "lz4")
    restored = a.root / "restored"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recoveryd",
            "--config",
            str(a.config),
            "restore",
            snap,
            "--to",
            str(restored),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert not (restored / "recovery.signal").exists()
    port = free_port()
    a.start(restored, port)
    assert a.sql(port, "select count(*) from citizens") == [(2000,)]


def test_verify_names_a_segment_missing_from_the_archive(archive: Archive) -> None:
    """`verify` checks that the WAL archive is continuous from each base backup to the
    newest archived segment: with one segment deleted from the store it exits 3 and
    names that segment; before, it passes."""
    a = archive
    cli = [sys.executable, "-m", "recoveryd", "--config", str(a.config)]
    backup = run_argv([*cli, "backup", "registry"])
    assert backup.returncode == 0, backup.stderr
    switched = []
    for n in range(3):
        a.sql(a.port, f"create table t{n} as select g from generate_series(1, 1000) g")
        switched.append(switch(a))
    archived_through(a, switched[-1])
    ok = run_argv([*cli, "verify"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (a.store / "wal" / "registry" / switched[1]).unlink()
    gap = run_argv([*cli, "verify"])
    assert gap.returncode == 3, gap.stdout + gap.stderr
    assert f"wal/registry/{switched[1]}" in gap.stdout + gap.stderr
    assert "Traceback" not in gap.stderr


def _flushed(a: Archive, lsn: str, deadline_s: float = 60) -> None:
    """Wait until the streaming slot has flushed WAL up to `lsn`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        rows = a.sql(
            a.port,
            f"select confirmed_flush_lsn >= '{lsn}' or flush_lsn >= '{lsn}' "
            "from pg_replication_slots s left join pg_stat_replication r "
            "on r.pid = s.active_pid where slot_name = 'recoveryd_registry'",
        )
        if rows and rows[0][0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the stream did not reach {lsn}")


def test_streamed_wal_recovers_to_seconds_before_the_server_was_lost(archive: Archive) -> None:
    """With `wal-stream` running, a cluster lost before its current segment was complete
    is still recovered to a moment seconds before the loss: the segment being written
    was pushed as a partial one, and `wal-get` hands it to the recovering server; every
    table's rows are those it had at the target."""
    a = archive
    cli = [sys.executable, "-m", "recoveryd", "--config", str(a.config)]
    a.sql(a.port, "create table citizens (id int primary key, name text)")
    assert run_argv([*cli, "backup", "registry"]).returncode == 0
    stream = subprocess.Popen([*cli, "wal-stream", "registry"], stderr=subprocess.PIPE)
    try:
        a.sql(a.port, "insert into citizens select g, 'before' from generate_series(1, 3000) g")
        at_target = table_checksums(a.dsn(a.port))
        ((target,),) = a.sql(a.port, "select clock_timestamp()")
        a.sql(a.port, "insert into citizens select g, 'after' from generate_series(3001, 4000) g")
        ((lsn,),) = a.sql(a.port, "select pg_current_wal_lsn()")
        _flushed(a, str(lsn))
    finally:
        a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)  # the site is lost
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(120) == 0, stream.stderr.read() if stream.stderr else ""
    assert list((a.store / "wal" / "registry").glob("*.partial"))

    restored = a.root / "restored"
    done = subprocess.run(
        [
            *cli,
            *("restore", "registry", "--time", target.isoformat(), "--to", str(restored)),
            *("--cmd", str(a.exe)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    port = free_port()
    a.start(restored, port)
    wait_promoted(a, port)
    assert a.sql(port, "select count(*), max(id) from citizens") == [(3000, 3000)]
    assert table_checksums(a.dsn(port)) == at_target


def test_asynchronous_archiving_acknowledges_only_stored_segments(tmp_path: Path) -> None:
    """With `--spool`, a worker archives the ready segments several at once; every
    segment PostgreSQL was told is archived is in the store and reads back, and the
    spool keeps no acknowledgement nobody consumed."""
    with temporary_archive("recoveryd-wal-async-", spool="spool") as a:
        root, spool = a.root, a.root / "spool"
        names = []
        for n in range(6):
            a.sql(a.port, f"create table t{n} as select g from generate_series(1, 20000) g")
            names.append(switch(a))
        archived_through(a, names[-1])
        assert (spool / "registry" / "worker.log").exists()
        for name in names:
            fetched = root / f"fetched-{name}"
            got = subprocess.run(
                [str(a.exe), "--config", str(a.config), "wal-get", "registry", name, str(fetched)],
                capture_output=True,
                text=True,
            )
            assert got.returncode == 0, got.stderr
            assert fetched.stat().st_size == 16 << 20
        assert not [p.name for p in (spool / "registry").glob("*.ok") if p.stem in names]


def test_a_base_backup_over_ssh(archive: Archive, sshd_server: SshServer) -> None:
    """A `mode: physical` source with `via_ssh` runs pg_basebackup on the database host
    over SSH (host key checked) and streams the tar back; the base backup restores and
    starts as a consistent cluster."""
    a = archive
    doc = yaml.safe_load(a.config.read_text())
    doc["hosts"] = {"db1": sshd_server.host("root").model_dump(mode="json")}
    doc["sources"]["registry"]["via_ssh"] = "db1"
    a.config.write_text(yaml.safe_dump(doc))
    a.sql(a.port, "create table citizens as select g as id from generate_series(1, 3000) g")
    cli = [sys.executable, "-m", "recoveryd", "--config", str(a.config)]
    backup = run_argv([*cli, "--json", "backup", "registry"])
    assert backup.returncode == 0, backup.stderr
    listing = run_argv([*cli, "--json", "snapshots"])
    (snap,) = [s["id"] for s in json.loads(listing.stdout)]
    restored = a.root / "restored"
    done = subprocess.run(
        [*cli, "restore", snap, "--to", str(restored)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    port = free_port()
    a.start(restored, port)
    assert a.sql(port, "select count(*) from citizens") == [(3000,)]


def test_recovery_to_a_time_from_a_base_backup_taken_over_ssh(
    archive: Archive, sshd_server: SshServer
) -> None:
    """A base backup taken over SSH (`via_ssh`) and the WAL archived by `wal-push` recover
    the cluster to a noted time: every table holds the rows it had then, and the damage
    done after (rows rewritten, a table dropped) is not there."""
    a = archive
    doc = yaml.safe_load(a.config.read_text())
    doc["hosts"] = {"db1": sshd_server.host("root").model_dump(mode="json")}
    doc["sources"]["registry"]["via_ssh"] = "db1"
    a.config.write_text(yaml.safe_dump(doc))
    a.sql(a.port, "create table citizens as select 1 as id, 'kept' as name")
    a.sql(a.port, "insert into citizens select g, 'kept' from generate_series(2, 2000) g")
    cli = [sys.executable, "-m", "recoveryd", "--config", str(a.config)]
    backup = run_argv([*cli, "backup", "registry"])
    assert backup.returncode == 0, backup.stderr
    a.sql(a.port, "create table ledger as select g, md5(g::text) from generate_series(1, 300) g")
    a.sql(a.port, "insert into citizens select g, 'later' from generate_series(2001, 2500) g")
    at_target = table_checksums(a.dsn(a.port))
    ((target,),) = a.sql(a.port, "select clock_timestamp()")
    a.sql(a.port, "update citizens set name = 'ransom'")
    a.sql(a.port, "drop table ledger")
    archived_through(a, switch(a))
    restored = a.root / "restored"
    done = subprocess.run(
        [
            *cli,
            *("restore", "registry", "--time", target.isoformat(), "--to", str(restored)),
            *("--cmd", str(a.exe)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    port = free_port()
    a.start(restored, port)
    wait_promoted(a, port)
    assert table_checksums(a.dsn(port)) == at_target


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback http
        return str(resp.read().decode())


def test_the_daemon_streams_wal_of_sources_that_ask_for_it(archive: Archive) -> None:
    """A source with `wal: {stream: true}` has its WAL streamed by the daemon while it
    runs: a segment closed on the server is archived without archive_command's help (the
    daemon's own objects), `/metrics` shows the stream up, and SIGTERM stops the stream
    with the daemon (exit 0)."""
    from tests.integration.daemon.proc import DaemonProcess

    a = archive
    doc = yaml.safe_load(a.config.read_text())
    doc["sources"]["registry"]["wal"] = {"stream": True}
    doc["sources"]["registry"]["schedule"] = "0 3 * * *"
    doc["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    a.config.write_text(yaml.safe_dump(doc))
    a.sql(a.port, "alter system set archive_command = '/bin/false'")
    a.sql(a.port, "select pg_reload_conf()")
    daemon = DaemonProcess(a.config, a.root / "state").start()
    try:
        spool = a.root / "state" / "wal-stream" / "registry"
        deadline = time.monotonic() + 120
        while not list(spool.glob("*.partial")):
            assert time.monotonic() < deadline, daemon.log_path.read_text()[-3000:]
            time.sleep(0.1)
        a.sql(a.port, "create table streamed as select g from generate_series(1, 10000) g")
        segment = switch(a)
        stored = a.store / "wal" / "registry" / segment
        while not stored.exists():
            assert time.monotonic() < deadline, daemon.log_path.read_text()[-3000:]
            time.sleep(0.1)
        url = f"http://{doc['metrics']['listen']}/metrics"
        while 'recoveryd_wal_stream_up{source="registry"} 1.0' not in _get(url):
            assert time.monotonic() < deadline, _get(url)
            time.sleep(0.2)
    finally:
        assert daemon.stop() == 0
