"""Acceptance of the daemon (issue 3): the real process, three real databases, a real S3 store.

PostgreSQL, MariaDB and SQLite sources on second-level schedules into Ceph RGW.
The test watches snapshots appear in the store, reloads with a broken and with
a changed configuration, stops the daemon with SIGTERM in the middle of an
upload, and then checks: exit 0, no multipart upload left, no half snapshot
listed, every listed snapshot verifies, the audit log is intact, and the alert
sent while the webhook server was down was spooled and delivered afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd import app
from recoveryd.config import load_config
from tests.fixtures.mariadb import MariadbServer, populate_registry_mysql
from tests.fixtures.objectstores import TargetSpec
from tests.fixtures.postgres import PgServer, populate_registry
from tests.fixtures.web import HttpRecorder, poll
from tests.initrepo import init_repositories
from tests.integration.daemon.proc import DaemonProcess, daemon_json, recoveryd, runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BULK_MB = 24  # incompressible; at 2 MiB/s its upload lasts long enough to be interrupted


def _config(
    tmp: Path,
    *,
    pg: PgServer,
    pg_db: str,
    maria: MariadbServer,
    maria_db: str,
    cache_db: Path,
    primary: TargetSpec,
    slow: TargetSpec,
    hook: str,
    cache_schedule: str,
) -> str:
    sources = {
        "population": {
            "kind": "postgresql",
            "dsn": pg.dsn(pg_db),
            "password_file": str(pg.password_file),
            "schedule": "every 2s",
            "rpo": "1h",
            "priority": "critical",
            "targets": ["primary"],
        },
        "legal-entities": {
            "kind": "mysql",
            "dsn": maria.dsn(maria_db),
            "password_file": str(maria.password_file),
            "schedule": "*/3 * * * * *",
            "rpo": "1h",
            "targets": ["primary"],
        },
        "health-code-cache": {
            "kind": "sqlite",
            "path": str(cache_db),
            "schedule": cache_schedule,
            "targets": ["slow"],
        },
    }
    doc: dict[str, Any] = {
        "state_dir": str(tmp / "state"),
        "encryption": {"key_file": str(tmp / "master.key")},
        "targets": {"primary": primary.yaml(), "slow": slow.yaml()},
        "sources": sources,
        "notify": [{"kind": "webhook", "url": hook, "on": ["failure"]}],
        "daemon": {"prune_schedule": None, "shutdown_grace": "1s", "max_concurrent_jobs": 3},
        "metrics": {"listen": "127.0.0.1:0"},
    }
    return json.dumps(doc, indent=1)  # JSON is YAML


def _listed(config: Path, source: str) -> list[str]:
    """Snapshot ids of `source` as the store lists them (read in-process: faster than the CLI)."""
    return [s.id for s in app.list_snapshots(load_config(config), source=source)]


def _multipart_uploads(spec: TargetSpec) -> list[Any]:
    client = spec.server.client()  # type: ignore[union-attr]
    return list(client.list_multipart_uploads(Bucket=spec.target.bucket).get("Uploads", []))  # type: ignore[union-attr]


def _objects(spec: TargetSpec) -> int:
    client = spec.server.client()  # type: ignore[union-attr]
    return int(client.list_objects_v2(Bucket=spec.target.bucket).get("KeyCount", 0))  # type: ignore[union-attr]


def test_daemon_acceptance(
    tmp_path: Path,
    pg_server: PgServer,
    mariadb_server: MariadbServer,
    target_factory: Callable[..., TargetSpec],
    http_recorder: HttpRecorder,
) -> None:
    """Snapshots of three databases appear on schedule; a broken reload is refused and its
    alert, spooled while the webhook was down, is delivered later; a changed schedule takes
    effect; SIGTERM during an upload exits 0 leaving no trace of the interrupted snapshot."""
    pg_db = pg_server.create_database("acc_population")
    populate_registry(pg_server.dsn(pg_db, with_password=True), 500)
    maria_db = mariadb_server.create_database("acc_legal")
    populate_registry_mysql(mariadb_server, maria_db, 500)
    cache_db = tmp_path / "cache.db"
    with sqlite3.connect(cache_db) as conn:
        conn.execute("create table blob(id integer primary key, data blob)")
        conn.executemany(
            "insert into blob(data) values (?)", [(os.urandom(1 << 20),) for _ in range(BULK_MB)]
        )
    primary = target_factory("ceph")
    slow = target_factory("ceph", max_bandwidth="2MiB/s")
    config = tmp_path / "recoveryd.yaml"
    hook = f"{http_recorder.url}/hook"
    settings = {
        "pg": pg_server, "pg_db": pg_db, "maria": mariadb_server, "maria_db": maria_db,
        "cache_db": cache_db, "primary": primary, "slow": slow, "hook": hook,
    }  # fmt: skip
    config.write_text(_config(tmp_path, cache_schedule="0 0 1 1 *", **settings))  # type: ignore[arg-type]
    assert recoveryd(config, "key", "generate").returncode == 0
    init_repositories(config)
    state = tmp_path / "state"

    daemon = DaemonProcess(config, state).start()
    try:
        daemon.wait_logged("daemon_ready")

        def ok(source: str) -> int:
            return len([r for r in runs(state) if r[0] == source and r[1] == "ok"])

        assert poll(lambda: ok("population") >= 2 and ok("legal-entities") >= 2, 120)
        assert len(_listed(config, "population")) >= 2
        assert len(_listed(config, "legal-entities")) >= 2
        assert ok("health-code-cache") == 0

        # a broken configuration while the webhook server is down
        good = config.read_text()
        http_recorder.down()
        config.write_text(good.replace('"sources": {', '"sources": {{', 1))
        daemon.signal(signal.SIGHUP)
        daemon.wait_logged("config_reload_refused")
        assert poll(lambda: daemon.logged("notify_deferred") != [], 30)
        assert list((state / "spool").glob("*.json")), "the alert waits in the spool"
        http_recorder.up()
        failures = [r for r in runs(state) if r[1] not in ("ok", "running")]
        assert failures == [], failures

        def subjects() -> list[str]:
            return [r.json()["subject"] for r in http_recorder.received("/hook")]

        assert poll(lambda: "configuration reload refused" in subjects(), 60), subjects()
        assert poll(lambda: not list((state / "spool").glob("*.json")), 30)

        # a changed schedule takes effect: the bulk source starts; stop it mid-upload
        changed = _config(tmp_path, cache_schedule="every 1s", **settings)  # type: ignore[arg-type]
        config.write_text(changed)
        daemon.signal(signal.SIGHUP)
        daemon.wait_logged("config_reloaded")
        assert poll(
            lambda: (
                any(
                    a["job"] == "backup:health-code-cache"
                    for a in daemon_json(state).get("activity", [])
                )
                and _objects(slow) > 0
            ),
            60,
        ), "the bulk upload did not start"
        daemon.signal(signal.SIGTERM)
        assert daemon.stop(timeout=90) == 0
    finally:
        daemon.kill()

    stopping = daemon.logged("daemon_stopping")
    assert stopping and "backup:health-code-cache" in stopping[0]["running"]
    assert ("health-code-cache", "aborted") in [(s, r) for s, r, _ in runs(state)]
    assert _listed(config, "health-code-cache") == [], "no half snapshot is listed"
    assert _multipart_uploads(slow) == [] and _multipart_uploads(primary) == []
    verify = recoveryd(config, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    audit = recoveryd(config, "audit", "verify")
    assert audit.returncode == 0, audit.stderr
    commands = [
        json.loads(line)["command"] for line in (state / "audit.jsonl").read_text().splitlines()
    ]
    assert commands.count("backup") >= 4 and "verify" in commands
    assert daemon_json(state)["state"] == "stopped"
