"""Which CLI commands leave an audit record: every change always, read-only commands only
where the state dir already exists (validating a config needs no writable state dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recoveryd.audit import AuditLog
from recoveryd.cli.main import main

CONFIG = """\
state_dir: ./var/state
encryption: {key_file: ./k}
targets: {local: {kind: filesystem, path: ./store}}
sources:
  reg: {kind: sqlite, path: ./reg.db, targets: [local]}
"""


@pytest.fixture
def conf(tmp_path: Path) -> str:
    (tmp_path / "c.yaml").write_text(CONFIG)
    return str(tmp_path / "c.yaml")


def test_config_check_needs_no_state_dir_and_creates_none(
    tmp_path: Path, conf: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator validates a configuration before its directories exist: `config check`
    succeeds and leaves no state dir (nor its parent) behind."""
    assert main(["--config", conf, "config", "check"]) == 0
    assert "ok (1 source(s)" in capsys.readouterr().out
    assert not (tmp_path / "var").exists()


def test_changes_are_always_audited_reads_once_the_state_dir_exists(
    tmp_path: Path, conf: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that changes something (key generate) is audited, creating the state dir;
    after that, read-only commands are audited too, under their full command path."""
    assert main(["--config", conf, "key", "generate"]) == 0
    assert main(["--config", conf, "config", "check"]) == 0
    records = AuditLog(tmp_path / "var" / "state").records()
    assert [(r["command"], r["result"]) for r in records] == [
        ("key generate", "ok"),
        ("config check", "ok"),
    ]


def test_listing_snapshots_creates_no_state_dir(
    tmp_path: Path, conf: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`snapshots` on a deployment that was never set up (no key, no repository) fails
    with the usage exit code, and creates no state dir."""
    assert main(["--config", conf, "--json", "snapshots"]) == 2
    assert "error" in json.loads(capsys.readouterr().out)
    assert not (tmp_path / "var").exists()
