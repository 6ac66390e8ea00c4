"""`snapshots --source S` for a source no longer in the configuration still lists what the
store holds of it: the store, not the configuration, says which snapshots exist."""

from __future__ import annotations

import json
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
  old: {kind: sqlite, path: ./old.db, targets: [local]}
"""


def test_snapshots_of_a_removed_source_are_still_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a source is taken out of the configuration, `snapshots --source` with its name
    lists its snapshots (exit 0) instead of calling the name unknown."""
    monkeypatch.chdir(tmp_path)
    demo_data.create_sqlite(tmp_path / "old.db", 200)
    conf = tmp_path / "c.yaml"
    conf.write_text(CONFIG)
    assert main(["--config", str(conf), "key", "generate"]) == 0
    init_repositories(conf)
    assert main(["--config", str(conf), "backup"]) == 0
    conf.write_text(CONFIG.replace("  old:", "  new:").replace("old.db", "new.db"))
    capsys.readouterr()
    assert main(["--config", str(conf), "--json", "snapshots", "--source", "old"]) == 0
    assert [s["source"] for s in json.loads(capsys.readouterr().out)] == ["old"]


def test_no_listable_target_is_an_error_not_an_empty_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When no target can be listed (here the only one is damaged), `snapshots --json` exits
    with that target's error (3, one line) instead of printing `[]`, which a script would read
    as "no snapshots exist"."""
    monkeypatch.chdir(tmp_path)
    demo_data.create_sqlite(tmp_path / "old.db", 200)
    conf = tmp_path / "c.yaml"
    conf.write_text(CONFIG)
    assert main(["--config", str(conf), "key", "generate"]) == 0
    init_repositories(conf)
    assert main(["--config", str(conf), "backup"]) == 0
    with (tmp_path / "store" / "config").open("ab") as f:
        f.write(b"x")
    capsys.readouterr()
    assert main(["--config", str(conf), "--json", "snapshots"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["error"]["exit"] == 3
    assert len(err.strip().splitlines()) == 1 and "target local" in err
