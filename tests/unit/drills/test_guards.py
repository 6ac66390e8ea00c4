"""`only_if` guards on steps and rollbacks, and what happens to the rollback of a step that
was cut short (possibly done)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recoveryd.drills.api import run_playbook
from tests.unit.drills.helpers import cli, records, watched_playbook, write_playbook

HEAD = """\
apiVersion: recoveryd/v1
kind: Drill
name: guarded
"""


def test_a_step_whose_only_if_does_not_hold_is_skipped_with_the_value_seen(
    tmp_path: Path,
) -> None:
    """`only_if` is evaluated just before the step: when it does not hold the step is skipped
    and journaled `skipped` with the value the probe saw; when it holds the step runs."""
    state_file = tmp_path / "role"
    state_file.write_text("standby\n")
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: restart as primary
    run: [touch, "{tmp_path / "restarted"}"]
    only_if: {{run: [cat, "{state_file}"], expect: primary}}
  - name: act on a standby
    run: [touch, "{tmp_path / "acted"}"]
    only_if: {{name: it is a standby, run: [cat, "{state_file}"], expect: standby}}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    assert not (tmp_path / "restarted").exists()
    assert (tmp_path / "acted").exists()
    skipped, ran = records(result.journal, "step")
    assert skipped["status"] == "skipped"
    assert skipped["guard"]["held"] is False
    assert skipped["guard"]["value"] == "standby"
    assert "standby" in skipped["output"]
    assert ran["status"] == "ok"
    assert ran["guard"] == {
        "name": "it is a standby",
        "held": True,
        "value": "standby",
        "detail": None,
    }


def test_a_rollback_guard_that_does_not_hold_skips_the_rollback(tmp_path: Path) -> None:
    """The rollback of a completed step runs through its `only_if`: when the probe does not
    hold, the rollback is skipped and journaled as such with the value seen."""
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: promote
    run: [sh, -c, 'echo promoted > "$0"', "{tmp_path / "role"}"]
    rollback:
      name: restart the old primary
      run: [touch, "{tmp_path / "two-primaries"}"]
      only_if: {{run: [cat, "{tmp_path / "role"}"], expect: standby}}
  - name: fail
    run: [sh, -c, 'exit 1']
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "failed"
    assert not (tmp_path / "two-primaries").exists()
    (rollback,) = records(result.journal, "rollback")
    assert rollback["status"] == "skipped"
    assert rollback["guard"]["value"] == "promoted"


def _cut_short_book(tmp_path: Path, guard: str) -> Path:
    """A step that is stopped half-way by a stop condition; its rollback may have a guard."""
    flag = tmp_path / "healthy"
    return watched_playbook(
        tmp_path,
        HEAD,
        f"""\
steps:
  - name: half-done work
    run: [sh, -c, 'rm "$0"; touch "$1"; while :; do sleep 0.05; done',
          "{flag}", "{tmp_path / "half"}"]
    timeout: 120s
    rollback:
      name: undo the work
      run: [sh, -c, 'rm "$0"; touch "$1"', "{tmp_path / "half"}", "{flag}"]
      {guard}
""",
    )


def test_a_step_cut_short_without_a_guard_is_not_rolled_back_and_says_so(
    tmp_path: Path,
) -> None:
    """A step cut short may or may not have taken effect: without an `only_if` its rollback
    is not run (it could do harm), a `rollback` record says so, and the report lists it."""
    from recoveryd.reports import render_run_report

    book = _cut_short_book(tmp_path, "")
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "aborted"
    assert (tmp_path / "half").exists()  # not undone
    (rollback,) = records(result.journal, "rollback")
    assert rollback["status"] == "not_run"
    assert rollback["name"] == "undo the work"
    assert "possibly done" in rollback["error"]
    report = render_run_report(
        tmp_path / "state", result.run_id, fmt="md", out=tmp_path / "report.md"
    ).read_text()
    assert "undo the work" in report.split("## Action items", 1)[-1]


def test_a_step_cut_short_is_rolled_back_when_its_guard_holds(tmp_path: Path) -> None:
    """The rollback of a step cut short runs when its `only_if` probe holds."""
    half = tmp_path / "half"
    book = _cut_short_book(tmp_path, f'only_if: {{run: [test, -e, "{half}"]}}')
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "aborted"
    assert not half.exists()
    (rollback,) = records(result.journal, "rollback")
    assert rollback["status"] == "ok"
    assert rollback["guard"]["held"] is True


def test_a_destructive_steps_rollback_without_a_guard_is_a_validation_warning(
    tmp_path: Path,
) -> None:
    """`drill validate` warns (and still exits 0) about the rollback of a destructive step
    that has no `only_if`, naming file, line and key; a guarded one is not mentioned."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
steps:
  - name: wipe
    run: ["true"]
    destructive: true
    rollback: {name: restore, run: ["true"]}
  - name: guarded wipe
    run: ["true"]
    destructive: true
    rollback: {name: restore, run: ["true"], only_if: {run: ["true"]}}
""",
    )
    done = cli("drill", "validate", str(book))
    assert done.returncode == 0, done.stderr
    assert f"{book}:9: steps[0].rollback" in done.stderr
    assert "only_if" in done.stderr
    assert "steps[1]" not in done.stderr
    as_json = cli("--json", "drill", "validate", str(book))
    doc: dict[str, Any] = json.loads(as_json.stdout)
    assert len(doc["warnings"]) == 1


def test_only_if_must_be_a_probe(tmp_path: Path) -> None:
    """`only_if` takes a read-only probe (run, sql, http, wait, pressure): anything else is
    refused naming the key."""
    book = write_playbook(
        tmp_path,
        HEAD + "steps:\n  - {name: x, run: ['true'], only_if: {sleep: 1s}}\n",
    )
    done = cli("drill", "validate", str(book))
    assert done.returncode == 2
    assert "steps[0].only_if" in done.stderr
