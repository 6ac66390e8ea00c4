"""Restore drills and the object-store-loss drill against real PostgreSQL, Ceph RGW and Swift."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from recoveryd import app
from recoveryd.config import LoadedConfig, load_config
from recoveryd.drills.api import run_playbook, run_restore_drill
from recoveryd.state import StateStore
from tests.fixtures.objectstores import S3Server, TargetSpec
from tests.fixtures.postgres import PgServer, populate_registry
from tests.initrepo import init_repositories
from tests.unit.drills.helpers import REPO, records

pytestmark = pytest.mark.integration
ROWS = 300
CHECKSUM_SQL = "select md5(string_agg(national_id, ',' order by id)) from citizen"


def _setup(
    tmp_path: Path, pg: PgServer, target_factory: Callable[..., TargetSpec], name: str
) -> tuple[LoadedConfig, str]:
    """A population database with ROWS citizens, backed up to a Ceph primary and a Swift
    off-site store; returns the configuration and the source's checksum."""
    db = pg.create_database(f"{name}_population")
    populate_registry(pg.dsn(db, with_password=True), ROWS)
    with psycopg.connect(pg.dsn(db, with_password=True)) as conn:
        checksum = str(conn.execute(CHECKSUM_SQL).fetchone()[0])  # type: ignore[index]
    primary, offsite = target_factory("ceph"), target_factory("swift")
    doc = {
        "state_dir": str(tmp_path / "state"),
        "encryption": {"key_file": str(tmp_path / "master.key")},
        "targets": {"primary": primary.yaml(), "offsite": offsite.yaml()},
        "sources": {
            "population": {
                "kind": "postgresql",
                "dsn": pg.dsn(db),
                "password_file": str(pg.password_file),
                "targets": ["primary", "offsite"],
                "restore_drill": {
                    "into": pg.dsn(f"{name}_scratch"),
                    "password_file": str(pg.password_file),
                    "checks": [{"sql": "select count(*) from citizen", "expect": f">= {ROWS}"}],
                    "rto": "5m",
                },
            }
        },
    }
    path = tmp_path / "recoveryd.yaml"
    path.write_text(json.dumps(doc))
    cfg = load_config(path)
    app.generate_key(cfg)
    init_repositories(path)
    app.backup(cfg)
    return cfg, checksum


def _scratch_exists(pg: PgServer, name: str) -> bool:
    rows = pg.psql("postgres", f"select 1 from pg_database where datname = '{name}'")
    return bool(rows)


def test_restore_drill_playbook_restores_and_checks_counts_and_checksum(
    tmp_path: Path, pg_server: PgServer, target_factory: Callable[..., TargetSpec]
) -> None:
    """playbooks/restore-drill.yaml restores the newest snapshot from the S3 store into a
    scratch database, checks row counts and the checksum, drops the scratch database and
    records the RTO."""
    cfg, checksum = _setup(tmp_path, pg_server, target_factory, "rdp")
    result = run_playbook(
        cfg,
        REPO / "playbooks" / "restore-drill.yaml",
        vars={
            "scratch_dsn": pg_server.dsn("rdp_scratch"),
            "scratch_password_file": str(pg_server.password_file),
            "min_rows": str(ROWS),
            "expected_checksum": checksum,
        },
    )
    assert result.status == "passed", result.error
    assert result.objectives_met
    assert result.rto_seconds is not None and result.rto_seconds > 0
    step = next(r for r in records(result.journal, "step") if r["kind"] == "restore")
    assert checksum in step["output"]
    assert not _scratch_exists(pg_server, "rdp_scratch")


def test_restore_drill_with_a_wrong_checksum_fails_with_exit_4(
    tmp_path: Path, pg_server: PgServer, target_factory: Callable[..., TargetSpec]
) -> None:
    """A restore whose checksum does not match fails the drill (exit 4) and still drops the
    scratch database."""
    cfg, _ = _setup(tmp_path, pg_server, target_factory, "rdw")
    result = run_playbook(
        cfg,
        REPO / "playbooks" / "restore-drill.yaml",
        vars={
            "scratch_dsn": pg_server.dsn("rdw_scratch"),
            "scratch_password_file": str(pg_server.password_file),
            "min_rows": str(ROWS),
            "expected_checksum": "0" * 32,
        },
    )
    assert result.status == "failed"
    assert int(result.exit_code) == 4
    assert not _scratch_exists(pg_server, "rdw_scratch")


def test_restore_drill_into_an_existing_database_is_refused_and_drops_nothing(
    tmp_path: Path, pg_server: PgServer, target_factory: Callable[..., TargetSpec]
) -> None:
    """A restore drill whose scratch DSN names a database that exists (here the live one, by
    mistake) fails before restoring anything, and never drops it."""
    cfg, checksum = _setup(tmp_path, pg_server, target_factory, "rdx")
    result = run_playbook(
        cfg,
        REPO / "playbooks" / "restore-drill.yaml",
        vars={
            "scratch_dsn": pg_server.dsn("rdx_population"),
            "scratch_password_file": str(pg_server.password_file),
            "min_rows": str(ROWS),
            "expected_checksum": checksum,
        },
    )
    assert result.status == "failed"
    assert int(result.exit_code) == 4
    assert "already exists" in str(result.error)
    assert _scratch_exists(pg_server, "rdx_population")
    rows = pg_server.psql("rdx_population", "select count(*) from citizen")
    assert int(rows[0][0]) == ROWS, rows


def test_scheduled_restore_drill_is_recorded_with_its_rto(
    tmp_path: Path, pg_server: PgServer, target_factory: Callable[..., TargetSpec]
) -> None:
    """A source's restore_drill restores into the scratch database, runs its checks, drops it,
    and is recorded as a `restore_drill` run with RTO against the source's `rto`."""
    cfg, _ = _setup(tmp_path, pg_server, target_factory, "rds")
    result = run_restore_drill(cfg, "population")
    assert result.status == "passed", result.error
    assert result.objectives_met
    assert result.rto_seconds is not None
    assert not _scratch_exists(pg_server, "rds_scratch")
    runs = StateStore(tmp_path / "state").runs(kind="restore_drill", source="population")
    assert runs and runs[0].result == "ok"
    assert runs[0].details["rto_seconds"] == pytest.approx(result.rto_seconds)


@contextmanager
def power_switch(server: S3Server) -> Iterator[str]:
    """An HTTP power switch for a store's gateway: POST /store/primary/off|on."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.endswith("/off"):
                server.stop()
            elif self.path.endswith("/on"):
                server.start()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            del args

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/store/primary"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_object_store_loss_recovers_from_the_offsite_copy(
    tmp_path: Path, pg_server: PgServer, target_factory: Callable[..., TargetSpec]
) -> None:
    """playbooks/object-store-loss.yaml powers off the primary store, sees it unreachable,
    restores the newest snapshot from the off-site store within the RTO, and brings the
    primary back (steady state holds again)."""
    cfg, _ = _setup(tmp_path, pg_server, target_factory, "osl")
    primary = cfg.config.targets["primary"]
    offsite = cfg.config.targets["offsite"]
    ceph = target_factory("ceph").server
    assert ceph is not None
    with power_switch(ceph) as api:
        result = run_playbook(
            cfg,
            REPO / "playbooks" / "object-store-loss.yaml",
            yes=True,
            vars={
                "primary_endpoint": str(getattr(primary, "endpoint_url", "")),
                "offsite_endpoint": str(getattr(offsite, "endpoint_url", "")),
                "power_api": api,
                "scratch_dsn": pg_server.dsn("osl_scratch"),
                "scratch_password_file": str(pg_server.password_file),
                "min_rows": str(ROWS),
            },
        )
    assert result.status == "passed", result.error
    assert result.objectives_met
    assert result.rto_seconds is not None and result.rto_seconds > 0
    restore = next(r for r in records(result.journal, "step") if r["kind"] == "restore")
    assert restore["status"] == "ok"
    phases = [(r["phase"], r["status"]) for r in records(result.journal, "phase")]
    assert ("steady_state_after", "passed") in phases
    assert not _scratch_exists(pg_server, "osl_scratch")
