"""Reports claim only what was measured (each test names a false claim the report once made)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from recoveryd.config import Config
from recoveryd.reports import Report, load_report, render_report_bytes
from recoveryd.reports.gantt import LABEL_W, WIDTH, build_chart
from tests.unit.reports import sample


def _rewrite(state_dir: Path, records: list[dict[str, Any]]) -> None:
    (state_dir / "drills" / sample.RUN_ID / "journal.jsonl").unlink()
    sample.write_journal(state_dir, records)


def _report(state_dir: Path, config: Config | None = None) -> Report:
    return load_report(
        state_dir,
        sample.RUN_ID,
        config=config or sample.config(),
        secrets=[sample.SECRET],
        now=sample.NOW,
    )


def _md(report: Report, lang: str = "en") -> str:
    return render_report_bytes(report, fmt="md", lang=lang, secrets=[sample.SECRET]).decode()


def _finished(**fields: Any) -> dict[str, Any]:
    base = {
        "type": "run_finished",
        "time": sample.at(100),
        "status": "failed",
        "rto_s": None,
        "rpo_s": None,
        "objectives_met": False,
        "steady_state_restored": True,
        "error": None,
    }
    return {**base, **fields}


def test_a_dry_run_is_reported_as_a_dry_run_and_its_objectives_are_not_judged(
    state_dir: Path,
) -> None:
    """A dry run changes nothing and measures nothing: its report says "dry run", never
    "passed", and the objectives are "not judged" rather than met."""
    records = [r for r in sample.journal_records() if r["type"] not in ("mark", "run_finished")]
    records[0] = {**records[0], "dry_run": True}
    for r in records:
        if r["type"] == "step":
            r["status"] = "dry_run"
    records.append(_finished(status="passed", objectives_met=True, steady_state_restored=True))
    _rewrite(state_dir, records)
    report = _report(state_dir)
    assert report.status == "dry_run"
    md = _md(report)
    assert "PASSED" not in md and "| met |" not in md
    assert md.count("not judged (dry run)") == 2
    assert "dry run" in md.split("## Summary")[1].split("##")[0]


def test_a_failed_drill_without_recovery_shows_no_outage_duration(state_dir: Path) -> None:
    """No `recovered` mark: recovery was not measured, so the impact table shows no "fault
    to recovery" duration either (it once showed the time from the fault to the end)."""
    records = list(sample.journal_records()[:11])
    records.append(_finished(status="failed", error='step "promote the standby" failed: x'))
    _rewrite(state_dir, records)
    report = _report(state_dir)
    assert report.impact.outage_s is None
    md = _md(report)
    assert "| Service disruption (fault to recovery) | not measured |" in md
    assert "could not be measured" in md


def test_the_normal_state_is_claimed_only_when_steady_state_probes_ran_and_held(
    state_dir: Path,
) -> None:
    """`steady_state_restored: true` was recorded when no steady-state probe ran at all; the
    report claims the service is back to normal only when probes ran afterwards and held."""
    records = [
        r
        for r in sample.journal_records()
        if r.get("phase") not in ("steady_state", "steady_state_after")
    ]
    _rewrite(state_dir, records)
    md = _md(_report(state_dir))
    assert "back in its normal state" not in md
    assert "No steady-state check ran after the drill" in md


def _with_rollback(
    status: str, error: str | None, guard: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    records = sample.journal_records()[:-1]
    records.append(
        {
            "type": "rollback",
            "time": sample.at(99),
            "phase": "rollback",
            "name": "start the primary again",
            "kind": "run",
            "start": sample.at(98.6),
            "end": sample.at(99),
            "status": status,
            "attempts": 1,
            "destructive": False,
            "output": "",
            "error": error,
            **({"guard": guard} if guard else {}),
        }
    )
    records.append(sample.journal_records()[-1])
    return records


NOT_PROMOTED = {"name": "the standby has not been promoted", "held": False, "value": "f"}


def test_a_failed_rollback_is_in_the_summary_and_creates_an_action_item(state_dir: Path) -> None:
    """A rollback that failed leaves the system changed: the summary says so and an action
    item asks someone to finish it (it once appeared only as a timeline row)."""
    _rewrite(state_dir, _with_rollback("failed", "pg_ctl: no server running"))
    report = _report(state_dir)
    md = _md(report)
    summary = md.split("## Summary")[1].split("## ")[0]
    assert "rollback “start the primary again” failed" in summary
    assert any("start the primary again" in str(a.text) for a in report.actions)


def test_a_guard_skipped_rollback_is_an_action_item_when_nothing_verified_the_state_after(
    state_dir: Path,
) -> None:
    """A rollback its `only_if` guard skipped did not undo its step: the summary names the
    guard, and when no steady-state probe verified the service afterwards an action item
    asks someone to check by hand what the step left."""
    records = [
        r
        for r in _with_rollback("skipped", "only_if did not hold", NOT_PROMOTED)
        if r.get("phase") != "steady_state_after"
    ]
    _rewrite(state_dir, records)
    report = _report(state_dir)
    summary = _md(report).split("## Summary")[1].split("## ")[0]
    assert "rollback “start the primary again” was skipped" in summary
    assert "the standby has not been promoted" in summary
    assert any("start the primary again" in str(a.text) for a in report.actions)


def test_a_guard_skipped_rollback_is_an_action_item_even_when_the_service_looked_normal(
    state_dir: Path,
) -> None:
    """A guard that skipped a rollback kept an undo from running, so the step's effect is
    still in place: even when steady-state probes held after the drill, the summary names
    the skip and an action item asks someone to confirm by hand what the step left."""
    _rewrite(state_dir, _with_rollback("skipped", "only_if did not hold", NOT_PROMOTED))
    report = _report(state_dir)
    summary = _md(report).split("## Summary")[1].split("## ")[0]
    assert "rollback “start the primary again” was skipped" in summary
    assert any("start the primary again" in str(a.text) for a in report.actions)


def test_a_rollback_skipped_without_a_guard_still_creates_an_action_item(
    state_dir: Path,
) -> None:
    """A rollback skipped for another reason than its guard (nothing decided the undo was
    not needed) creates an action item even when the service looked normal afterwards."""
    _rewrite(state_dir, _with_rollback("skipped", "its host was unreachable"))
    report = _report(state_dir)
    assert any("start the primary again" in str(a.text) for a in report.actions)


def test_the_outage_starts_when_the_fault_step_starts(state_dir: Path) -> None:
    """RTO and the disruption run from the start of the step marked `fault` (1.0 s), not its
    end (2.5 s), to the recovered mark (97.9 s): 96.9 s everywhere in the report."""
    report = _report(state_dir)
    rto = report.objective("rto")
    assert rto is not None and rto.achieved_s is not None
    assert round(rto.achieved_s, 3) == 96.9
    assert report.impact.outage_s is not None and round(report.impact.outage_s, 3) == 96.9
    assert "1 min 37 s" in _md(report)


def test_an_explicit_fault_start_mark_starts_the_outage(state_dir: Path) -> None:
    """A step marked `fault_start` begins the outage where the playbook says (0.9 s)."""
    records = sample.journal_records()
    records.insert(9, {"type": "mark", "time": sample.at(0.9), "mark": "fault_start"})
    _rewrite(state_dir, records)
    rto = _report(state_dir).objective("rto")
    assert rto is not None and rto.achieved_s is not None and round(rto.achieved_s, 3) == 97.0


def test_times_are_shown_in_the_configured_timezone(state_dir: Path) -> None:
    """With `daemon.timezone: Asia/Shanghai` the operators read their local time (UTC+8)."""
    data = sample.config().model_dump()
    data["daemon"]["timezone"] = "Asia/Shanghai"
    report = _report(state_dir, Config.model_validate(data))
    md = _md(report)
    assert "| Started | 23 Nov 2026 23:01:02 |" in md
    assert "All times are Asia/Shanghai (UTC+08:00)." in md
    zh = _md(report, "zh")
    assert "2026年11月23日 23:01:02" in zh and "2026年11月23日 15:01:02" not in zh


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_the_chinese_report_has_no_english_of_its_own(state_dir: Path) -> None:
    """Apart from what people wrote (names, descriptions, owners, outputs, data recorded) and
    the acronyms RTO, RPO and SHA, the Chinese report has no English word."""
    md = _md(_report(state_dir), "zh")
    recorded = [
        *_strings(sample.journal_records()),
        "population",
        "verify",
        "load level elevated",
        "offsite: connection reset by peer",
        "essential-only",
        "health-code-gateway",
    ]
    for code in re.findall(r"```.*?```|`[^`]*`", md, flags=re.S):
        md = md.replace(code, "")  # outputs, paths, hashes, ids
    for text in sorted(set(recorded), key=len, reverse=True):
        md = md.replace(text, "")
    words = set(re.findall(r"[A-Za-z]{2,}", md)) - {"RTO", "RPO", "SHA", "SQL", "HTTP", "UTC"}
    assert not words, words


def test_the_timeline_chart_is_scaled_to_a_short_run_with_the_objective_marked(
    state_dir: Path,
) -> None:
    """A 0.3 s run with a 2 min RTO objective: the chart spans the run, so its steps are
    readable, and the objective (beyond the run) is still marked at the edge."""
    step = {
        "type": "step",
        "phase": "steps",
        "kind": "run",
        "attempts": 1,
        "destructive": False,
        "output": "",
        "error": None,
        "status": "ok",
    }
    records = [
        sample.journal_records()[0],
        {
            **step,
            "time": sample.at(0.1),
            "name": "break",
            "start": sample.at(0),
            "end": sample.at(0.1),
        },
        {"type": "mark", "time": sample.at(0.1), "mark": "fault"},
        {
            **step,
            "time": sample.at(0.3),
            "name": "heal",
            "start": sample.at(0.1),
            "end": sample.at(0.3),
        },
        {"type": "mark", "time": sample.at(0.3), "mark": "recovered"},
        _finished(time=sample.at(0.3), status="passed", objectives_met=False),
    ]
    _rewrite(state_dir, records)
    chart = build_chart(_report(state_dir))
    plot = WIDTH - LABEL_W - 10
    assert max(b.w for b in chart.bars) > plot / 3
    rto = next(line for line in chart.lines if line.kind == "rto")
    assert rto.x <= WIDTH and rto.beyond
