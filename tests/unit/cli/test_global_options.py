"""The global options (`--json`, `--config`, `--log-level`) work before or after the command,
as operators write them (`recoveryd status --json`, issue 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recoveryd.cli.main import main
from tests.initrepo import init_repositories

CONFIG = """\
state_dir: ./state
encryption: {key_file: ./k}
targets: {local: {kind: filesystem, path: ./store}}
sources:
  reg: {kind: sqlite, path: ./reg.db, targets: [local], rpo: 1h}
"""


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("RECOVERYD_CONFIG", raising=False)
    (tmp_path / "c.yaml").write_text(CONFIG)
    return str(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{conf}", "status", "--json"],
        ["status", "--config", "{conf}", "--json"],
        ["--json", "status", "--config", "{conf}"],
    ],
    ids=["json-after", "all-after", "mixed"],
)
def test_status_json_after_the_command_prints_the_document(
    conf: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """`recoveryd status --json` prints the status document on stdout and exits 0, exactly as
    `recoveryd --json status` does, wherever --config and --json are written."""
    assert main([a.format(conf=conf) for a in argv]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"daemon", "level", "sources"}
    assert doc["sources"]["reg"]["rpo_seconds"] == 3600


def test_nested_commands_take_json_after_them(
    conf: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under a command group (`config check`, `key rotate`) a trailing --json is accepted too,
    and stdout then carries only the JSON document."""
    assert main(["--config", conf, "config", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["--config", conf, "key", "generate"]) == 0
    init_repositories(conf)
    capsys.readouterr()
    assert main(["--config", conf, "key", "rotate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"] == ["local"]
    assert main(["--config", conf, "snapshots", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_log_level_after_the_command_adds_the_traceback(
    conf: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recoveryd backup --log-level debug` shows the traceback behind an error (no key yet),
    keeping the exit code of the error."""
    assert main(["--config", conf, "backup", "--log-level", "debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
