"""Continuity and retention of streamed MariaDB binary logs, against a real MariaDB with
binary logging: `verify` names a binary log missing between a dump and the newest
archived log (exit 3), and `prune` deletes exactly the binary logs older than the binlog
of the oldest dump it keeps."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from recoveryd.app.wiring import open_repository
from recoveryd.config import load_config
from recoveryd.repo.wal import BinlogArchive, binlog_order
from tests.fixtures.mariadb import MariadbServer, binlog_deployment
from tests.forkcli import run_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _archive(config: Path) -> BinlogArchive:
    return BinlogArchive(open_repository(load_config(config), "local"), "registry")


def _numbers(archive: BinlogArchive) -> list[int]:
    """Numbers of the archived binary logs (complete and partial)."""
    return sorted({binlog_order(n)[0] for n in archive.names()})


def _dump_binlogs(archive: BinlogArchive) -> list[str]:
    """The binlog file each dump recorded, oldest dump first."""
    repo = archive.repo
    manifests = sorted((repo.manifest(s) for s in repo.snapshot_ids()), key=lambda m: m.end_time)
    return [m.consistency["binlog_file"] for m in manifests]


def _current_binlog(srv: MariadbServer) -> str:
    ((name, *_),) = srv.sql(None, "show master status")
    return str(name)


def _archived_through(config: Path, number: int, deadline_s: float = 60) -> None:
    """Wait until the stream has stored every binary log up to `number` (complete)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        names = _archive(config).names()
        if any(binlog_order(n)[0] >= number and not n.endswith(".partial") for n in names):
            return
        time.sleep(0.1)
    raise AssertionError(f"binary log {number} was never archived")


def test_verify_names_a_binlog_gap_and_prune_keeps_what_the_kept_dump_needs(
    mariadb_server: MariadbServer, tmp_path: Path
) -> None:
    """Two dumps with binary logs streamed between and after them: `verify` is clean; with
    one log after the first dump lost from the store, `verify` fails with exit 3 naming
    `binlog/registry/<file>`; `prune` (keep_last: 1) forgets the first dump and deletes
    every log older than the second dump's binlog, no newer one, and `verify` is clean
    again (the gap was only needed by the forgotten dump)."""
    srv = mariadb_server
    db = srv.create_database("binlog_continuity")
    cli = binlog_deployment(srv, db, tmp_path, retention={"keep_last": 1})
    config = Path(cli[-1])
    srv.sql(db, "create table citizens (id int primary key, name varchar(40))")
    srv.sql(db, "insert into citizens select seq, 'first' from seq_1_to_200")
    first = run_argv([*cli, "backup", "registry"])
    assert first.returncode == 0, first.stderr
    stream = subprocess.Popen([*cli, "binlog-stream", "registry"], stderr=subprocess.PIPE)
    try:
        srv.sql(db, "insert into citizens select seq, 'between' from seq_201_to_300")
        srv.sql(None, "flush binary logs")
        srv.sql(db, "update citizens set name = 'rewritten'")
        srv.sql(None, "flush binary logs")
        second = run_argv([*cli, "backup", "registry"])
        assert second.returncode == 0, second.stderr
        srv.sql(db, "update citizens set name = 'after'")
        srv.sql(None, "flush binary logs")
        _archived_through(config, binlog_order(_current_binlog(srv))[0] - 1)
    finally:
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(120) == 0, stream.stderr.read() if stream.stderr else ""

    archive = _archive(config)
    dump1, dump2 = (binlog_order(f)[0] for f in _dump_binlogs(archive))
    assert dump2 >= dump1 + 2
    assert _numbers(archive) == list(range(dump1, _numbers(archive)[-1] + 1))
    clean = run_argv([*cli, "verify"])
    assert clean.returncode == 0, clean.stdout + clean.stderr

    lost = next(n for n in archive.names() if binlog_order(n)[0] == dump1 + 1)
    archive.repo.store.delete(archive.key(lost))
    gap = run_argv([*cli, "verify"])
    assert gap.returncode == 3, gap.stdout + gap.stderr
    assert f"binlog/registry/{lost}" in gap.stdout + gap.stderr
    assert "binary log missing" in gap.stdout + gap.stderr

    before = _numbers(archive)
    pruned = run_argv([*cli, "--json", "prune"])
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert len(_dump_binlogs(archive)) == 1
    assert _numbers(archive) == [n for n in before if n >= dump2]
    (report,) = json.loads(pruned.stdout)["targets"]
    assert report["deleted_wal"] == len([n for n in before if n < dump2])
    again = run_argv([*cli, "verify"])
    assert again.returncode == 0, again.stdout + again.stderr
    srv.drop_database(db)
