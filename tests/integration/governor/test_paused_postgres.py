"""A paused PostgreSQL dump holds a transaction; past max_pause it is abandoned and released."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from recoveryd import app
from recoveryd.config import load_config
from recoveryd.errors import InterruptedOperation
from recoveryd.flow import Progress
from recoveryd.governor.core import Governor
from recoveryd.governor.decide import Band, Hold
from recoveryd.state import StateStore
from tests.fixtures.nginx import wait_until
from tests.fixtures.postgres import PgServer, populate_registry
from tests.initrepo import init_repositories

pytestmark = pytest.mark.integration

# the snapshot's sessions (the coprocess exporting the snapshot, and pg_dump) in a transaction
DUMPS = (
    "select count(*) from pg_stat_activity where application_name = 'recoveryd'"
    " and datname = current_database() and xact_start is not null"
)


def test_paused_pg_dump_is_abandoned_after_max_pause_and_releases_its_transaction(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """While paused at critical, pg_dump's transaction stays open (visible in
    pg_stat_activity); past governor.max_pause the snapshot is abandoned, nothing is
    committed, the dump's session ends, and a later attempt commits and verifies."""
    db = "governor_pause"
    pg_server.create_database(db, owner=pg_server.admin_user)
    populate_registry(pg_server.admin_dsn(db), 1_000)
    # more than the pipeline reads ahead, so the dump is still running when it pauses
    pg_server.psql(
        db,
        "create table filler as select g, md5(random()::text) || md5(random()::text)"
        " || md5(random()::text) || md5(random()::text) as noise"
        " from generate_series(1, 600000) g",
    )
    pg_server.psql(db, "grant select on all tables in schema public to public")
    source = {
        "kind": "postgresql",
        "dsn": pg_server.dsn(db),
        "password_file": str(pg_server.password_file),
        "targets": ["local"],
        "priority": "normal",
    }
    (tmp_path / "recoveryd.yaml").write_text(
        f"state_dir: {tmp_path}/state\n"
        f"encryption: {{key_file: {tmp_path}/master.key}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path}/store}}}}\n"
        f"sources: {{population: {json.dumps(source)}}}\n"
    )
    cfg = load_config(tmp_path / "recoveryd.yaml")
    app.generate_key(cfg)
    init_repositories(tmp_path / "recoveryd.yaml")
    pressure = {"simulated": 0.0}
    state = StateStore(tmp_path / "state")
    gov = Governor(
        lambda: pressure, {"simulated": Band(50, 80)}, hold=Hold(0, 0), events=state, max_pause=3
    )
    release = threading.Event()

    def progress(p: Progress) -> None:
        if pressure["simulated"] == 0:
            pressure["simulated"] = 95.0
            gov.tick()

    out: dict[str, Any] = {}

    def backup() -> None:
        try:
            app.backup(cfg, ["population"], admission=gov, progress=progress)
        except InterruptedOperation as exc:
            out["error"] = exc
        release.set()

    t = threading.Thread(target=backup)
    t.start()
    assert gov.wait_for(lambda: any("paused" in h for h in gov.status().held_back), 60)
    assert pg_server.psql(db, DUMPS)[0][0] >= 1  # the dump's transaction is held open
    t.join(timeout=60)
    assert isinstance(out.get("error"), InterruptedOperation)
    assert app.list_snapshots(cfg, source="population") == []
    wait_until(lambda: pg_server.psql(db, DUMPS)[0][0] == 0, 30, "pg_dump's session ending")
    pressure["simulated"] = 10.0
    gov.tick()
    [result] = app.backup(cfg, ["population"], admission=gov)
    assert app.verify(cfg, [result.id], read_data=True).ok
