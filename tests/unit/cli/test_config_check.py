"""`recoveryd config check` validates the file and every playbook it names, touching nothing."""

from __future__ import annotations

import json
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


UNGUARDED = """\
apiVersion: recoveryd/v1
kind: Drill
name: unguarded
steps:
  - name: wipe the scratch copy
    run: ["true"]
    destructive: true
    rollback: {name: put it back, run: ["true"]}
"""


def test_warnings_of_the_playbooks_named_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A playbook the configuration names (a scheduled drill, a governor action) that is
    valid but risky — a destructive step whose rollback has no only_if — passes the check
    (exit 0), and its warning is printed as `drill validate` prints it, after the key path
    that names the playbook, in the text and the JSON output alike."""
    (tmp_path / "book.yaml").write_text(UNGUARDED)
    extra = (
        'drills:\n  - {playbook: ./book.yaml, schedule: "0 4 * * *"}\n'
        "governor: {on_enter: {critical: [./book.yaml]}}\n"
    )
    code, _, err = run(tmp_path, extra, capsys)
    assert code == 0, err
    warned = [line for line in err.splitlines() if "has no only_if" in line]
    assert len(warned) == 2, err
    assert warned[0].count("drills[0].playbook") == 1 and "book.yaml" in warned[0]
    assert "governor.on_enter.critical[0]" in warned[1]
    code = main(["--json", "--config", str(tmp_path / "c.yaml"), "config", "check"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert sum("has no only_if" in w for w in doc["warnings"]) == 2
