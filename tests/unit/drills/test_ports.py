"""Drill steps reach the product's operations only through the port their caller injects."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from recoveryd import app
from recoveryd.app.drillops import AppSnapshotOperations
from recoveryd.config import LoadedConfig, load_config
from recoveryd.daemon.ops import AppOperations
from recoveryd.drills.api import run_playbook
from tests.unit.drills.helpers import records, write_playbook

BOOK = """\
apiVersion: recoveryd/v1
kind: Drill
name: ops
steps:
  - {name: snapshot the registry, backup: {sources: [reg]}}
  - {name: check the newest snapshot, verify: {source: reg, read_data: true}}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> LoadedConfig:
    """A SQLite registry backed up to a filesystem store."""
    with sqlite3.connect(tmp_path / "reg.db") as conn:
        conn.execute("create table citizen(id integer primary key, name text)")
        conn.executemany("insert into citizen(name) values (?)", [("a",), ("b",)])
    (tmp_path / "c.yaml").write_text(
        "state_dir: ./state\nencryption: {key_file: ./k}\n"
        "targets: {local: {kind: filesystem, path: ./store}}\n"
        "sources:\n  reg: {kind: sqlite, path: ./reg.db, targets: [local]}\n"
    )
    loaded = load_config(tmp_path / "c.yaml")
    app.generate_key(loaded)
    app.init_repositories(loaded)
    return loaded


def test_backup_and_verify_steps_use_the_injected_operations(
    tmp_path: Path, cfg: LoadedConfig
) -> None:
    """With the app's snapshot operations injected, a backup step writes a snapshot to the
    store and a verify step reads it back."""
    book = write_playbook(tmp_path, BOOK)
    result = run_playbook(cfg, book, ops=AppSnapshotOperations())
    assert result.status == "passed", result.error
    (snap,) = app.list_snapshots(cfg)
    steps = records(result.journal, "step")
    assert snap.id in steps[0]["output"]
    assert steps[1]["output"].startswith("1 snapshot(s)")


def test_a_backup_step_without_operations_fails_and_says_why(
    tmp_path: Path, cfg: LoadedConfig
) -> None:
    """A caller that injects no snapshot operations gets a failed drill naming the missing
    part; nothing is backed up behind its back."""
    book = write_playbook(tmp_path, BOOK)
    result = run_playbook(cfg, book)
    assert result.status == "failed"
    assert "needs the snapshot operations" in (result.error or "")
    assert app.list_snapshots(cfg) == []


def test_a_governor_playbook_reads_the_level_it_is_given_not_daemon_json(
    tmp_path: Path, cfg: LoadedConfig
) -> None:
    """A shedding playbook the daemon runs for its governor compares `pressure` with the level
    the governor hands over, even when a fresh daemon.json says something else."""
    state = cfg.resolve_path(cfg.config.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    (state / "daemon.json").write_text(json.dumps({"level": "normal"}))
    book = write_playbook(
        tmp_path,
        "apiVersion: recoveryd/v1\nkind: Drill\nname: shed\n"
        "stop_conditions:\n  - {name: calm enough, pressure: below critical, interval: 100ms}\n"
        "steps:\n  - {name: shed, sleep: 30s}\n",
    )
    result = AppOperations().run_playbook(cfg, book, lambda: "critical")
    assert result.status == "aborted"
    assert records(result.journal, "stop_condition")[0]["detail"] == "pressure is critical"
