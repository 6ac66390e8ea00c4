"""`config check` reports every problem at once, one line each naming file, line and key;
a configuration that failed to load is not parsed a second time by the audit hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoveryd import config as config_module
from recoveryd.cli import context
from recoveryd.cli.main import main

BASE = """\
state_dir: ./state
encryption: {key_file: ./k}
targets: {local: {kind: filesystem, path: ./store}}
sources:
  reg: {kind: sqlite, path: ./reg.db, targets: [local], rpo: 0s}
"""


def test_every_problem_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three mistakes give three lines, each naming the file, its line and its key."""
    (tmp_path / "c.yaml").write_text(
        BASE
        + "metrics: {listen: banana}\n"
        + "governor:\n  signals:\n    cpu: {elevated: 90, critical: 70}\n"
    )
    code = main(["--config", str(tmp_path / "c.yaml"), "config", "check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 3, err
    assert any(":5: sources.reg.rpo: must be longer than zero" in line for line in err)
    assert any(":6: metrics.listen: " in line for line in err)
    assert any(":9: governor.signals.cpu.critical: critical (70)" in line for line in err)
    assert all(line.startswith(f"recoveryd: {tmp_path / 'c.yaml'}:") for line in err)


def test_an_unknown_time_zone_is_blamed_on_daemon_timezone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The time zone is the mistake, not the first source's schedule."""
    (tmp_path / "c.yaml").write_text(
        BASE.replace(", rpo: 0s", ', schedule: "0 3 * * *"') + "daemon: {timezone: Mars/Base}\n"
    )
    code = main(["--config", str(tmp_path / "c.yaml"), "config", "check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert ":6: daemon.timezone: unknown time zone" in err[0]


def test_a_failed_configuration_is_read_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit hook asks for the configuration after the command failed: it gets the
    remembered error, the file is not parsed again (a hostile file is not read twice)."""
    (tmp_path / "state").mkdir()
    (tmp_path / "c.yaml").write_text(BASE)
    calls: list[object] = []

    def counting(path: object = None) -> config_module.LoadedConfig:
        calls.append(path)
        return config_module.load_config(path)  # type: ignore[arg-type]

    monkeypatch.setattr(context, "load_config", counting)
    assert main(["--config", str(tmp_path / "c.yaml"), "status"]) == 2
    assert "sources.reg.rpo" in capsys.readouterr().err
    assert len(calls) == 1
