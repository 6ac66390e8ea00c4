"""The report model and its renderings: what a supervisor reads on the first page."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from recoveryd.reports import (
    Report,
    ReportError,
    load_report,
    render_report_bytes,
    render_run_report,
)
from recoveryd.reports.model import Msg
from recoveryd.state import StateStore
from tests.unit.reports import sample


def _report(state_dir: Path, secrets: tuple[str, ...] = (sample.SECRET,)) -> Report:
    return load_report(
        state_dir, sample.RUN_ID, config=sample.config(), secrets=secrets, now=sample.NOW
    )


def test_objectives_compare_achieved_with_promised(state_dir: Path) -> None:
    """RTO 96.9 s (from the start of the fault step to the recovery) against 120 s is met;
    RPO 7.2 s against 5 s is missed; the run failed."""
    report = _report(state_dir)
    rto, rpo = report.objective("rto"), report.objective("rpo")
    assert rto is not None and rto.met is True and rto.achieved_s is not None
    assert round(rto.achieved_s, 3) == 96.9
    assert rpo is not None and rpo.met is False and rpo.target_s == 5.0
    assert report.status == "failed"
    assert report.owners.government == "Provincial big-data bureau, DR duty officer"


def test_a_missed_objective_generates_an_action_item_for_the_vendor(state_dir: Path) -> None:
    """A failed objective becomes an action item owned by the vendor, due two weeks later."""
    report = _report(state_dir)
    generated = [a for a in report.actions if a.origin == "generated"]
    assert len(generated) == 1
    assert generated[0].owner == "Cloud vendor on-call"
    assert generated[0].due is not None and generated[0].due.isoformat() == "2026-12-07"


def test_timeline_holds_steps_marks_approvals_and_shedding(state_dir: Path) -> None:
    """Every step, mark, approval and shedding event appears once, in time order, with the
    state store's events and failures from the run's window joined in."""
    report = _report(state_dir)
    kinds = [e.kind for e in report.timeline]
    assert kinds.count("step") == 3 and kinds.count("mark") == 2 and "approval" in kinds
    assert kinds.count("event") == 4  # 2 from the journal, 2 from the state store
    assert "run" in kinds  # the failed off-site copy during the drill
    times = [e.time for e in report.timeline]
    assert times == sorted(times)
    assert report.impact.requests_shed == 1520
    assert report.impact.services == ("population", "health-code-gateway")


def test_backups_are_shown_as_they_stood_at_the_fault(state_dir: Path) -> None:
    """The backup table gives the last snapshot's age when the outage began (the start of the
    fault step) against the source's RPO, the last verify and the last restore drill's RTO."""
    (row,) = _report(state_dir).backups
    assert row.age_s == 3 * 3600 + 1.0 and row.rpo_s == 4 * 3600 and row.overdue is False
    assert row.last_verify_result == "ok"
    assert row.last_restore_drill_rto_s == 842.0


def test_a_tampered_journal_is_stated_on_the_first_page(state_dir: Path) -> None:
    """Editing the journal after the fact (turning the failure into a pass) is detected, and
    the report says so before anything else, in every format and language."""
    sample.tamper(state_dir / "drills" / sample.RUN_ID / "journal.jsonl")
    report = _report(state_dir)
    assert report.tampered
    assert any(a.origin == "generated" and "tampered" in str(a.text) for a in report.actions)
    md = render_report_bytes(report, fmt="md", lang="en").decode()
    assert md.index("WARNING: this record was altered") < md.index("## Objectives")
    zh = render_report_bytes(report, fmt="md", lang="zh").decode()
    assert zh.index("警告：本记录在写入后被篡改") < zh.index("## 目标与结果")
    html = render_report_bytes(report, fmt="html", lang="en").decode()
    assert html.index('id="tamper-warning"') < html.index('id="badge-rto"')


def test_an_intact_journal_says_it_verifies(state_dir: Path) -> None:
    """The appendix gives the chain head and that it verifies; no warning is shown."""
    report = _report(state_dir)
    md = render_report_bytes(report, fmt="md", lang="en").decode()
    assert "WARNING" not in md
    assert report.integrity.head in md and "the hash chain verifies" in md


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reports_never_contain_secrets(state_dir: Path, fmt: str, lang: str) -> None:
    """A password in a step's output (in a DSN, in PGPASSWORD=, and bare) never reaches the
    report: known patterns and the values passed in are masked."""
    out = render_run_report(
        state_dir, sample.RUN_ID, fmt=fmt, lang=lang, secrets=[sample.SECRET], now=sample.NOW
    )
    text = out.read_text(encoding="utf-8")
    assert sample.SECRET not in text
    assert "postgresql://dr:***@127.0.0.1" in text


def test_redaction_is_applied_again_when_rendering(state_dir: Path) -> None:
    """A secret that reached the model (built without knowing the value) is still masked by
    the renderer when the value is known at render time."""
    report = _report(state_dir, secrets=())
    assert any(sample.SECRET in o.output for o in report.outputs)
    for fmt in ("md", "html"):
        text = render_report_bytes(report, fmt=fmt, lang="en", secrets=[sample.SECRET]).decode()
        assert sample.SECRET not in text


def test_an_unfinished_journal_reports_an_incomplete_run(state_dir: Path) -> None:
    """A journal without `run_finished` (a crash mid-drill) renders as incomplete, not passed."""
    path = state_dir / "drills" / sample.RUN_ID / "journal.jsonl"
    path.unlink()
    sample.write_journal(state_dir, sample.journal_records()[:12])
    report = _report(state_dir)
    assert report.status == "running" and not report.complete
    md = render_report_bytes(report, fmt="md", lang="en").decode()
    assert "INCOMPLETE" in md and "no final entry" in md


def test_unknown_run_is_one_clear_error(tmp_path: Path) -> None:
    """Asking for a run that does not exist names it and says where to look."""
    with pytest.raises(ReportError, match='no drill run or incident "nope"'):
        render_run_report(tmp_path, "nope")


def test_html_is_self_contained(state_dir: Path) -> None:
    """The HTML loads nothing from elsewhere: no src/href/url() pointing outside the file,
    and the timeline chart is inline SVG."""
    html = render_report_bytes(_report(state_dir), fmt="html", lang="zh").decode()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "url(" not in html and "<link" not in html and "<script" not in html
    assert '<svg id="timeline-chart"' in html and "<style>" in html


def test_an_aborted_drill_names_the_stop_condition_and_lists_rollbacks(state_dir: Path) -> None:
    """When a stop condition trips, the report says which one and why, shows the rollback
    that ran, and the unmeasured recovery as such."""
    records = [
        r
        for r in sample.journal_records()[:11]
        if r["type"] != "mark" or r.get("mark") != "recovered"
    ]
    records += [
        {
            "type": "stop_condition",
            "time": sample.at(30),
            "name": "host not overloaded",
            "status": "tripped",
            "detail": "pressure critical (cpu 97.0)",
        },
        {
            "type": "rollback",
            "time": sample.at(33),
            "phase": "rollback",
            "name": "stop the primary",
            "kind": "ssh",
            "start": sample.at(31),
            "end": sample.at(33),
            "status": "ok",
            "attempts": 1,
            "destructive": False,
            "output": "server started",
            "error": None,
        },
        {
            "type": "run_finished",
            "time": sample.at(34),
            "status": "aborted",
            "rto_s": None,
            "rpo_s": None,
            "objectives_met": False,
            "steady_state_restored": True,
            "error": "stop condition tripped: host not overloaded",
        },
    ]
    (state_dir / "drills" / sample.RUN_ID / "journal.jsonl").unlink()
    sample.write_journal(state_dir, records)
    report = _report(state_dir)
    assert report.status == "aborted"
    (stop,) = report.stop_conditions
    assert stop.status == "tripped" and "cpu 97.0" in stop.detail
    assert any(s.record_type == "rollback" and s.status == "ok" for s in report.steps)
    md = render_report_bytes(report, fmt="md", lang="en").decode()
    assert "stopped for safety because “host not overloaded” tripped" in md
    assert "could not be measured" in md and "ABORTED" in md


def test_secrets_resolved_in_this_process_are_masked_too(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drill runner that resolved a password and then renders its own report needs not pass
    it again: every secret resolved in the process is masked."""
    from recoveryd import secrets

    monkeypatch.setattr(secrets, "REDACTOR", secrets.Redactor([sample.SECRET]))
    out = render_run_report(state_dir, sample.RUN_ID, fmt="md", now=sample.NOW)
    assert sample.SECRET not in out.read_text(encoding="utf-8")


def test_steps_passed_but_an_objective_missed_is_not_a_pass(state_dir: Path) -> None:
    """A run whose steps all succeeded but which broke a promise reads OBJECTIVE MISSED."""
    records = sample.journal_records()
    records[-1] = {**records[-1], "status": "passed", "error": None}
    (state_dir / "drills" / sample.RUN_ID / "journal.jsonl").unlink()
    sample.write_journal(state_dir, records)
    report = _report(state_dir)
    assert report.status == "missed"
    md = render_report_bytes(report, fmt="md", lang="en").decode()
    assert "**OBJECTIVE MISSED**" in md and "every step succeeded, but it MISSED" in md


def test_runs_recorded_by_the_daemon_count_as_backups_and_verifies(state_dir: Path) -> None:
    """The daemon records `daemon_verify` and `job_deferred`; the report reads them like the
    CLI's `verify` and the governor's `deferred`."""
    store = StateStore(state_dir)
    run = store.start_run("daemon_verify", source="population", at=sample.T0 - timedelta(hours=1))
    store.end_run(run, "failed", error="chunk 3f0a: authentication failed", at=sample.T0)
    store.record_event(
        "job_deferred", {"job": "verify:population"}, at=sample.T0 + timedelta(seconds=5)
    )
    store.close()
    report = _report(state_dir)
    assert report.backups[0].last_verify_result == "failed"
    assert any(e.name == Msg("ev_deferred") for e in report.timeline)
