"""What a drill run measures and journals: the outage, stop-condition checks, dry runs."""

from __future__ import annotations

import json
from pathlib import Path

from recoveryd.drills.api import run_playbook
from recoveryd.reports import load_report
from recoveryd.state import StateStore
from tests.unit.drills.helpers import cli, records, write_playbook

HEAD = """\
apiVersion: recoveryd/v1
kind: Drill
name: measures
"""


def test_the_outage_runs_from_the_start_of_the_step_marked_fault(tmp_path: Path) -> None:
    """RTO is measured from when the step marked `fault` started (the fault is being made)
    to the `recovered` mark, and the mark names that step and its start."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
objectives: {rto: 1h}
steps:
  - {name: break it, run: [sh, -c, 'for i in 1 2 3; do :; done'], marks: fault}
  - {name: it is back, run: ["true"], marks: recovered}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    fault, _ = records(result.journal, "mark")
    step = records(result.journal, "step")[0]
    assert fault["step"] == "break it" and fault["step_start"] == step["start"]
    finished = records(result.journal, "run_finished")[0]
    report = load_report(tmp_path / "state", result.run_id)
    rto = report.objective("rto")
    assert rto is not None and rto.achieved_s == finished["rto_s"] == result.rto_seconds
    assert report.impact.outage_s == result.rto_seconds
    assert result.rto_seconds is not None and result.rto_seconds > 0


def test_an_explicit_fault_start_mark_begins_the_outage(tmp_path: Path) -> None:
    """`marks: fault_start` on an earlier step begins the outage when that step ends."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
steps:
  - {name: traffic cut, run: ["true"], marks: fault_start}
  - {name: primary stopped, run: ["true"], marks: fault}
  - {name: it is back, run: ["true"], marks: recovered}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    start, _, back = records(result.journal, "mark")
    assert start["mark"] == "fault_start"
    assert back["mark"] == "recovered"
    records_ = {r["mark"]: r["time"] for r in records(result.journal, "mark")}
    assert records_["fault_start"] <= records_["fault"]
    report = load_report(tmp_path / "state", result.run_id)
    assert report.impact.outage_start is not None
    assert report.impact.outage_start.isoformat().startswith(start["time"][:19])


def test_every_check_of_a_stop_condition_is_counted(tmp_path: Path) -> None:
    """A condition checked many times is reported with that count (once "Checks: 1"): the
    step waits until the condition has been checked five times, so the count is at least 5."""
    count = tmp_path / "checks"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
stop_conditions:
  - name: service healthy
    run: [sh, -c, 'echo x >> "$0"', "{count}"]
    interval: 10ms
steps:
  - name: work while watched
    wait: {{run: [sh, -c, 'test $(wc -l < "$0") -ge 5', "{count}"]}}
    interval: 10ms
    timeout: 60s
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    (held,) = records(result.journal, "stop_condition")
    assert held["status"] == "held" and held["checks"] >= 5
    (row,) = load_report(tmp_path / "state", result.run_id).stop_conditions
    assert row.checks == held["checks"] and row.status == "ok"


def test_a_dry_run_judges_no_objective(tmp_path: Path) -> None:
    """A dry run measures nothing: its result and journal leave the objectives unjudged, and
    the command line says "dry run", not "objectives met"."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
objectives: {rto: 1m}
steps:
  - {name: change, run: ["true"], marks: fault}
  - {name: back, run: ["true"], marks: recovered}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state", dry_run=True)
    assert result.status == "passed" and result.objectives_met is None
    assert records(result.journal, "run_finished")[0]["objectives_met"] is None
    shown = cli("drill", "--state-dir", str(tmp_path / "s2"), "run", "--dry-run", str(book))
    assert shown.returncode == 0, shown.stderr
    assert "objectives met" not in shown.stdout
    assert "dry run: objectives not judged" in shown.stdout
    as_json = cli(
        "--json", "drill", "--state-dir", str(tmp_path / "s3"), "run", "--dry-run", str(book)
    )
    doc = json.loads(as_json.stdout)
    assert doc["objectives_met"] is None


def test_a_dry_run_is_recorded_in_the_state_database_as_a_dry_run_not_as_failed(
    tmp_path: Path,
) -> None:
    """The run history (`state.db`) records a dry run that went through as `dry_run` (it
    once recorded `failed`, its objectives being unjudged); a dry run whose preflight does
    not hold is `failed`, and a real run that passed is `ok`."""
    steps = 'steps:\n  - {name: change, run: ["true"]}\n'
    book = write_playbook(tmp_path, HEAD + steps)
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + 'preflight:\n  - {name: up, run: ["false"], expect: 0}\n' + steps)
    state_dir = tmp_path / "state"
    for path, dry in ((book, True), (bad, True), (book, False)):
        run_playbook(None, path, state_dir=state_dir, dry_run=dry)
    runs = StateStore(state_dir).runs(kind="drill")
    assert [(r.result, r.details["dry_run"]) for r in reversed(runs)] == [
        ("dry_run", True),
        ("failed", True),
        ("ok", False),
    ]


def test_without_steady_state_probes_the_state_afterwards_is_not_claimed(tmp_path: Path) -> None:
    """With no steady-state probe, the journal records the state after the drill as unknown
    (it once recorded `steady_state_restored: true`)."""
    book = write_playbook(tmp_path, HEAD + 'steps:\n  - {name: a, run: ["true"]}\n')
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert records(result.journal, "run_finished")[0]["steady_state_restored"] is None
