"""Reports of drills that were interrupted, aborted mid-step or left rollbacks undone: the
records the runner's abort handling and `only_if` guards journal, read as typed records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recoveryd import drill_records as dr
from recoveryd.reports import Report, load_report, render_report_bytes
from tests.unit.reports import sample

# the sample journal up to and including "promote the standby" (the second step)
_UNTIL_PROMOTE = 12


def _report(state_dir: Path, records: list[dict[str, Any]]) -> Report:
    (state_dir / "drills" / sample.RUN_ID / "journal.jsonl").unlink()
    sample.write_journal(state_dir, records)
    return load_report(
        state_dir, sample.RUN_ID, config=sample.config(), secrets=[sample.SECRET], now=sample.NOW
    )


def _md(report: Report, lang: str) -> str:
    return render_report_bytes(report, fmt="md", lang=lang, secrets=[sample.SECRET]).decode()


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}")[1].split("\n## ")[0]


def _interrupted_run() -> list[dict[str, Any]]:
    """Interrupted by SIGTERM during the destructive first step, deferred until it ended; its
    rollback was not run, the second step's rollback was skipped by its guard."""
    records = sample.journal_records()[:_UNTIL_PROMOTE]
    records[0] = {**records[0], "warnings": ['step "stop the primary": rollback has no only_if']}
    records += [
        {
            "type": "abort",
            "time": sample.at(5.1),
            "status": "requested",
            "cause": "signal",
            "detail": "interrupted by a signal (SIGINT/SIGTERM) or the caller",
            "during": "stop the primary",
            "deferred": True,
        },
        {
            "type": "abort",
            "time": sample.at(5.2),
            "status": "effective",
            "cause": "signal",
            "requested_at": sample.at(5.1),
            "during": "stop the primary",
        },
        {"type": "phase", "time": sample.at(5.3), "phase": "steps", "status": "failed"},
        {"type": "phase", "time": sample.at(5.4), "phase": "rollback", "status": "started"},
        {
            "type": "rollback",
            "time": sample.at(5.5),
            "phase": "rollback",
            "name": "demote the standby",
            "kind": "ssh",
            "start": sample.at(5.5),
            "end": sample.at(5.5),
            "status": "skipped",
            "attempts": 0,
            "output": 'only_if "standby promoted" did not hold',
            "guard": {"name": "standby promoted", "held": False, "value": "f", "detail": None},
        },
        {
            "type": "rollback",
            "time": sample.at(5.6),
            "phase": "rollback",
            "name": "start the old primary",
            "kind": "ssh",
            "start": sample.at(5.6),
            "end": sample.at(5.6),
            "status": "not_run",
            "attempts": 0,
            "error": "cut short and possibly done",
        },
        {"type": "phase", "time": sample.at(5.7), "phase": "rollback", "status": "failed"},
        {
            "type": "run_finished",
            "time": sample.at(6.0),
            "status": "interrupted",
            "objectives_met": False,
            "error": "interrupted by a signal",
        },
    ]
    return records


def test_the_new_records_load_as_typed_records() -> None:
    """`abort`, `step_started`, `guard` and `run_started.warnings` are typed records (the
    journal refuses anything else), and the runner's writing of them round-trips."""
    typed = dr.parse_all(_interrupted_run())
    started = dr.first(typed, dr.RunStarted)
    assert started.warnings == ['step "stop the primary": rollback has no only_if']
    aborts = [r for r in typed if isinstance(r, dr.AbortRecord)]
    assert [a.status for a in aborts] == ["requested", "effective"]
    assert aborts[0].deferred is True and aborts[1].requested_at == aborts[0].time
    guarded = next(r for r in typed if isinstance(r, dr.StepRecord) and r.guard is not None)
    assert guarded.guard is not None and guarded.guard.name == "standby promoted"
    assert not guarded.guard.held
    began = dr.build("step_started", {"phase": "steps", "name": "x", "destructive": True})
    assert isinstance(began, dr.StepStarted) and began.destructive


def test_an_interrupted_run_reads_interrupted_in_both_languages(state_dir: Path) -> None:
    """The status of a run stopped by a signal is "interrupted" (not "aborted", not the
    runner's English error) in the English and the Chinese report."""
    report = _report(state_dir, _interrupted_run())
    assert report.status == "interrupted"
    en, zh = _md(report, "en"), _md(report, "zh")
    assert "INTERRUPTED" in _section(en, "Summary")
    assert "interrupted by a signal or by its caller" in _section(en, "Summary")
    assert "已中断" in zh and "演练被信号或调用方中断" in zh
    assert "interrupted by a signal" not in zh


def test_rollbacks_left_undone_are_in_the_summary_and_the_action_items(state_dir: Path) -> None:
    """A rollback skipped by its guard names the guard; one `not_run` (its step cut short,
    no guard) says its step may have taken effect; each becomes an action item."""
    en = _md(_report(state_dir, _interrupted_run()), "en")
    summary = _section(en, "Summary")
    assert "“demote the standby” was skipped: its only_if “standby promoted”" in summary
    assert "“start the old primary” was not run: its step was cut short" in summary
    actions = _section(en, "Action items")
    assert "“demote the standby” was skipped" in actions
    assert "“start the old primary” was not run" in actions


def test_the_timeline_shows_the_abort_as_requested_deferred_and_in_effect(
    state_dir: Path,
) -> None:
    """Each `abort` record is a timeline row: requested, waiting for the destructive step
    to end, and in effect."""
    report = _report(state_dir, _interrupted_run())
    rows = [e for e in report.timeline if e.kind == "abort"]
    assert len(rows) == 2
    en = _md(report, "en")
    assert "abort requested" in en and "waits for the destructive step “stop the primary”" in en
    assert "abort in effect" in en
    assert "请求中止" in _md(report, "zh")
