"""Source faults under the real daemon, with real PostgreSQL: a table locked by another
session, and the server restarted in the middle of a dump.

What must hold: the backup job fails with a clear error naming the source, nothing
is committed, the daemon keeps running and sends one failure alert, and once the
fault is gone the next scheduled backup succeeds (and the recovery is announced).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.e2e.conftest import Deployment, fs_target
from tests.faults.conftest import Tally
from tests.fixtures.postgres import PG_BIN, PgServer, _as_postgres, _run_cluster, populate_registry
from tests.fixtures.web import HttpRecorder, poll
from tests.integration.daemon.proc import DaemonProcess

pytestmark = pytest.mark.integration


def _site(
    tmp_path: Path, pg: PgServer, db: str, hook: str, bandwidth: str | None = None, **source: object
) -> Deployment:
    dep = Deployment(tmp_path / "deploy")
    dep.dir.mkdir()
    target = fs_target(tmp_path / "store")
    if bandwidth:
        target["max_bandwidth"] = bandwidth  # a slow target keeps the dump running
    dep.configure(
        targets={"local": target},
        sources={
            "registry": {
                "kind": "postgresql",
                "dsn": pg.dsn(db),
                "password_file": str(pg.password_file),
                "targets": ["local"],
                "schedule": "every 2s",
                "rpo": "1h",
                **source,
            }
        },
    )
    doc = yaml.safe_load(dep.config.read_text())
    doc["daemon"] = {"prune_schedule": None, "shutdown_grace": "5s"}
    doc["notify"] = [{"kind": "webhook", "url": f"{hook}/alert", "on": ["failure", "recovery"]}]
    dep.config.write_text(yaml.safe_dump(doc))
    return dep


def _alerts(recorder: HttpRecorder) -> list[str]:
    return [r.json().get("event", "") for r in recorder.requests if r.path == "/alert"]


def _finished(daemon: DaemonProcess, result: str, count: int = 1) -> list[dict[str, object]]:
    assert poll(
        lambda: len([e for e in daemon.logged("job_finished") if e["result"] == result]) >= count,
        120,
    ), daemon.log_path.read_text()[-3000:]
    return [e for e in daemon.logged("job_finished") if e["result"] == result]


def test_a_locked_table_fails_the_backup_clearly_and_the_daemon_alerts(
    tmp_path: Path, pg_server: PgServer, http_recorder: HttpRecorder, campaign: Tally
) -> None:
    """A table held in ACCESS EXCLUSIVE mode by another session: the backup gives up after
    `lock_wait_timeout` with an error naming the source and the lock, nothing is
    committed, the daemon keeps running and alerts once; when the lock goes, the next
    backup succeeds and the recovery is announced."""
    db = pg_server.create_database("locked_registry")
    populate_registry(pg_server.admin_dsn(db), 500)
    dep = _site(tmp_path, pg_server, db, http_recorder.url, lock_wait_timeout="1s")
    with psycopg.connect(pg_server.admin_dsn(db)) as holder:
        holder.execute("LOCK TABLE citizen IN ACCESS EXCLUSIVE MODE")
        campaign.add("fault:table_locked")
        daemon = DaemonProcess(dep.config, dep.state_dir).start()
        try:
            failed = _finished(daemon, "failed", 2)
            assert daemon.proc.poll() is None, "the daemon stopped"
            error = str(failed[0]["error"])
            assert error.startswith("source registry:"), error
            assert "lock" in error, error
            assert "\n" not in error
            assert dep.snapshots() == []
            assert poll(lambda: _alerts(http_recorder).count("failure") == 1, 30)
            holder.rollback()
            _finished(daemon, "ok")
            assert poll(lambda: "recovery" in _alerts(http_recorder), 30)
        finally:
            assert daemon.stop() == 0
    assert _alerts(http_recorder).count("failure") == 1
    dep.cli("verify", "--read-data").expect(0)


@pytest.fixture
def private_pg() -> Iterator[PgServer]:
    """A PostgreSQL cluster of this test's own, since the test restarts it."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="recoveryd-pg-restart-"))
    try:
        with contextlib.contextmanager(_run_cluster)(root) as server:
            yield server
            subprocess.run(  # the restarted postmaster is not the fixture's child
                _as_postgres(
                    str(PG_BIN / "pg_ctl"), "stop", "-D", str(root / "data"), "-m", "fast"
                ),
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _all_ok(events: list[dict[str, object]]) -> list[list[str]]:
    return [list(e["snapshots"]) for e in events]  # type: ignore[call-overload]


def _pg_ctl(pg: PgServer, *args: str) -> None:
    """pg_ctl as the postgres user; its output to a file (the postmaster keeps pipes open)."""
    subprocess.run(
        _as_postgres(str(PG_BIN / "pg_ctl"), args[0], "-D", str(pg.root / "data"), *args[1:]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )


def _dumping(pg: PgServer, db: str) -> bool:
    rows = pg.psql(
        "postgres",
        "select count(*) from pg_stat_activity where application_name = 'recoveryd' "
        f"and datname = '{db}' and query ilike 'COPY %'",
    )
    return bool(rows and rows[0][0])


def test_the_database_restarted_mid_dump_fails_the_backup_clearly(
    tmp_path: Path, private_pg: PgServer, http_recorder: HttpRecorder, campaign: Tally
) -> None:
    """PostgreSQL restarted (pg_ctl restart -m fast) while pg_dump streams: the backup
    fails naming the source, nothing is committed, the daemon keeps running and alerts,
    and the first backup after the restart succeeds."""
    db = private_pg.create_database("registry")
    populate_registry(private_pg.admin_dsn(db), 60_000)
    # At 1 MiB/s the dump streams for several seconds: the restart lands inside it.
    dep = _site(tmp_path, private_pg, db, http_recorder.url, bandwidth="1MiB/s")
    daemon = DaemonProcess(dep.config, dep.state_dir).start()
    try:
        assert poll(lambda: _dumping(private_pg, db), 120), "no dump was seen running"
        _pg_ctl(private_pg, "restart", "-m", "fast", "-l", str(private_pg.root / "restart.log"))
        campaign.add("fault:db_restart")
        failed = _finished(daemon, "failed")
        error = str(failed[0]["error"])
        assert error.startswith("source registry:"), error
        assert "\n" not in error
        assert failed[0]["snapshots"] == []
        assert poll(lambda: "failure" in _alerts(http_recorder), 30)
        _finished(daemon, "ok")
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0
    ok = [e for e in daemon.logged("job_finished") if e["result"] == "ok"]
    listed = {s["id"] for s in dep.snapshots()}
    assert listed == {s for e in _all_ok(ok) for s in e}, "a failed run committed a snapshot"
    dep.cli("verify", "--read-data").expect(0)
