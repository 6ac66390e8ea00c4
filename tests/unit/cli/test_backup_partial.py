"""One failing source does not stop the others' backups (the rest of the registry is safe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recoveryd.cli.main import main
from recoveryd.demo import data as demo_data
from tests.initrepo import init_repositories


def test_other_sources_are_backed_up_and_the_failure_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`backup` of three sources where the middle one is missing: the other two are
    snapshotted and listed, the JSON document names them, and the exit code is 1 with one
    line naming the failed source."""
    for name in ("a", "c"):
        demo_data.create_sqlite(tmp_path / f"{name}.db", 300)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "state_dir: ./state\nencryption: {key_file: ./k}\n"
        "targets: {local: {kind: filesystem, path: ./store}}\nsources:\n"
        + "".join(f"  {n}: {{kind: sqlite, path: ./{n}.db, targets: [local]}}\n" for n in "abc")
    )
    assert main(["--config", str(cfg), "key", "generate"]) == 0
    init_repositories(cfg)
    capsys.readouterr()
    assert main(["--config", str(cfg), "--json", "backup"]) == 1
    out, err = capsys.readouterr()
    assert [s["source"] for s in json.loads(out)["snapshots"]] == ["a", "c"]
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "backup failed for 1 of 3 sources" in lines[0]
    assert "source b" in lines[0]
    assert main(["--config", str(cfg), "--json", "snapshots"]) == 0
    assert sorted(s["source"] for s in json.loads(capsys.readouterr().out)) == ["a", "c"]
