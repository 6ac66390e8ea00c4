"""`recoveryd config check` validates the file and every playbook it names, touching nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recoveryd.cli.main import main

BASE = """\
state_dir: ./state
encryption: {key_file: ./k}
targets: {local: {kind: filesystem, path: ./store}}
sources:
  reg: {kind: sqlite, path: ./reg.db, targets: [local]}
"""


def run(tmp_path: Path, extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    (tmp_path / "c.yaml").write_text(BASE + extra)
    code = main(["--config", str(tmp_path / "c.yaml"), "config", "check"])
    out, err = capsys.readouterr()
    return code, out, err


def test_ok_with_a_warning_for_the_missing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid file passes (exit 0); a key file not generated yet is a warning, not an error;
    no store is touched."""
    code, out, err = run(tmp_path, "", capsys)
    assert code == 0
    assert "ok (1 source(s), 1 target(s), 0 playbook(s))" in out
    assert "key generate" in err
    assert not (tmp_path / "store").exists()


def test_missing_playbook_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A drill playbook that does not exist fails the check (exit 2) naming the key path."""
    code, _, err = run(
        tmp_path, 'drills:\n  - {playbook: ./absent.yaml, schedule: "0 4 * * *"}\n', capsys
    )
    assert code == 2
    assert "drills[0].playbook: playbook ./absent.yaml not found" in err


def test_invalid_playbook_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A playbook with a mistake fails `config check` (exit 2) with one line naming it."""
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: recoveryd/v1\nkind: Drill\nname: bad\nsteps:\n  - {name: x, rnu: [true]}\n"
    )
    code, _, err = run(
        tmp_path, 'drills:\n  - {playbook: ./bad.yaml, schedule: "0 4 * * *"}\n', capsys
    )
    assert code == 2
    assert "bad.yaml" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ('reg: {kind: sqlite, path: ./reg.db, targets: [local], schedule: "61 * * * *", rpo: 2h}',
         "sources.reg.schedule"),
        ('reg: {kind: sqlite, path: ./reg.db, targets: [local], verify: {schedule: "every soon"}}',
         "sources.reg.verify.schedule"),
        ('reg: {kind: sqlite, path: ./reg.db, targets: [local],'
         ' restore_drill: {schedule: "* * *", into: ./drill.db}}',
         "sources.reg.restore_drill.schedule"),
        ('reg: {kind: sqlite, path: ./reg.db, targets: [local]}\n'
         'daemon: {prune_schedule: "0 25 * * *"}', "daemon.prune_schedule"),
    ],
)  # fmt: skip
def test_a_bad_schedule_fails_the_check_naming_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: str, key: str
) -> None:
    """A schedule the daemon could not run (bad cron, bad period) fails `config check` with
    exit 2 and names the key to fix, before the daemon is ever started."""
    base = BASE.replace("reg: {kind: sqlite, path: ./reg.db, targets: [local]}", settings)
    (tmp_path / "c.yaml").write_text(base)
    code = main(["--config", str(tmp_path / "c.yaml"), "config", "check"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{key}: schedule" in err and "invalid" in err
    line = next(n for n, text in enumerate(base.splitlines(), 1) if key.split(".")[-2] in text)
    assert f"c.yaml:{line}: {key}" in err, err


def test_a_bad_drill_schedule_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A drill whose schedule is not a valid cron fails `config check` (exit 2) naming it."""
    (tmp_path / "ok.yaml").write_text(
        "apiVersion: recoveryd/v1\nkind: Drill\nname: ok\nsteps:\n  - {name: x, run: [true]}\n"
    )
    code, _, err = run(
        tmp_path, 'drills:\n  - {playbook: ./ok.yaml, schedule: "0 4 * * mon-xyz"}\n', capsys
    )
    assert code == 2, err
    assert "drills[0].schedule" in err
    assert re.search(r"c\.yaml:\d+: drills\[0\]\.schedule", err), err
