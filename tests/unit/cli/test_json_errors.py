"""With `--json`, stdout always carries exactly one JSON document, errors included, and every
argument or usage mistake exits 2."""

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
  a: {kind: sqlite, path: ./a.db, targets: [local]}
  b: {kind: sqlite, path: ./b.db, targets: [local]}
"""


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment with a key and a repository; source a has a database, b has none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECOVERYD_CONFIG", raising=False)
    demo_data.create_sqlite(tmp_path / "a.db", 100)
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert main(["--config", "c.yaml", "key", "generate"]) == 0
    init_repositories("c.yaml")
    return tmp_path / "c.yaml"


def one_document(out: str) -> dict[str, object]:
    """stdout parsed as exactly one JSON document (json.loads refuses trailing data)."""
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize(
    ("argv", "code", "exit_code"),
    [
        (["--config", "absent.yaml", "--json", "snapshots"], "config", 2),
        (["--config", "c.yaml", "--json", "backup", "nosuch"], "usage", 2),
        (["--config", "c.yaml", "--json", "bakup"], "usage", 2),
        (["--config", "c.yaml", "snapshots", "--json", "--target", "x"], "usage", 2),
    ],
    ids=["missing-config", "unknown-source", "unknown-command", "json-after-command"],
)
def test_an_error_is_one_json_document_on_stdout(
    conf: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: str,
    exit_code: int,
) -> None:
    """A failing command with `--json` prints `{"error": {"code", "message", "exit"}}` on
    stdout (and still one line on stderr); the exit code matches the document's."""
    capsys.readouterr()
    assert main(argv) == exit_code
    out, err = capsys.readouterr()
    error = one_document(out)["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert error["exit"] == exit_code
    assert str(error["message"]) in err


def test_partial_backup_lists_each_failed_source(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backup where one source fails prints one document listing the snapshot of the
    other and, under `failed`, the failed source with its error and exit code."""
    capsys.readouterr()
    assert main(["--config", "c.yaml", "--json", "backup"]) == 1
    doc = one_document(capsys.readouterr().out)
    assert [s["source"] for s in doc["snapshots"]] == ["a"]  # type: ignore[attr-defined]
    (failed,) = doc["failed"]  # type: ignore[misc]
    assert failed["source"] == "b"
    assert failed["exit"] == 1
    assert "b.db" in failed["error"]


def test_usage_mistakes_exit_2(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ambiguous snapshot prefix, an unknown report run id and a restore destination that
    already exists are usage mistakes: exit 2, one line naming the fix."""
    for _ in range(20):  # enough snapshots for two ids to share a first hex digit
        assert main(["--config", "c.yaml", "backup", "a"]) == 0
    ids = [p.name for p in (conf.parent / "store" / "snapshots").iterdir()]
    shared = next(i[0] for i in ids if sum(j.startswith(i[0]) for j in ids) > 1)
    (conf.parent / "exists.db").write_bytes(b"precious")
    cases = [
        (["restore", shared, "--to", "x.db"], "prefix matches"),
        (["report", "no-such-run"], 'no drill run or incident "no-such-run"'),
        (["restore", ids[0], "--to", "exists.db"], "already exists"),
    ]
    for args, text in cases:
        capsys.readouterr()
        assert main(["--config", "c.yaml", *args]) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and text in err, err
    assert (conf.parent / "exists.db").read_bytes() == b"precious"
