"""A password written into `restore --to` never shows: not on stderr, not in the audit log,
not in the run history (docs/SECURITY.md: secrets never appear in logs, errors, journals)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recoveryd.cli.main import main
from recoveryd.demo import data as demo_data
from tests.initrepo import init_repositories

CONFIG = """\
state_dir: ./state
encryption: {key_file: ./k}
targets: {local: {kind: filesystem, path: ./store}}
sources:
  reg: {kind: sqlite, path: ./reg.db, targets: [local]}
"""
SECRET = "Sup3r-Secret-Pw"


def test_password_in_a_wrong_kind_of_destination_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Restoring a SQLite snapshot to a PostgreSQL URI by mistake fails (exit 1) with one
    line; the URI's password appears neither there, nor in the audit log, nor in state.db,
    although the SQLite restore reads the URI as a path."""
    monkeypatch.chdir(tmp_path)
    demo_data.create_sqlite(tmp_path / "reg.db", 100)
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert main(["--config", "c.yaml", "key", "generate"]) == 0
    init_repositories("c.yaml")
    assert main(["--config", "c.yaml", "backup"]) == 0
    capsys.readouterr()
    sid = next((tmp_path / "store" / "snapshots").iterdir()).name
    dest = f"postgresql://backup:{SECRET}@127.0.0.1:9/population"
    assert main(["--config", "c.yaml", "restore", sid, "--to", dest]) == 1
    err = capsys.readouterr().err
    assert err.startswith("recoveryd: ") and len(err.strip().splitlines()) == 1
    assert SECRET not in err
    assert SECRET not in (tmp_path / "state" / "audit.jsonl").read_text()
    with sqlite3.connect(tmp_path / "state" / "state.db") as conn:
        errors = [str(r[0]) for r in conn.execute("select error from runs")]
    assert errors and not any(SECRET in e for e in errors)
