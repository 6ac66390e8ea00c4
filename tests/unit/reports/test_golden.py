"""Golden files: the fixed sample journal renders to fixed Markdown in English and Chinese.

Set UPDATE_GOLDEN=1 to rewrite tests/golden/ after an intended change, and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recoveryd.incidents import Incidents
from recoveryd.reports import render_run_report
from recoveryd.state import StateStore
from tests.unit.reports import sample

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def _check(actual: str, name: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 rewrites"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_drill_journal_renders_to_the_golden_markdown(state_dir: Path, lang: str) -> None:
    """A fixed drill journal and state store always render to the same Markdown, per language."""
    out = render_run_report(
        state_dir,
        sample.RUN_ID,
        fmt="md",
        lang=lang,
        config=sample.config(),
        secrets=[sample.SECRET],
        now=sample.NOW,
    )
    _check(out.read_text(encoding="utf-8"), f"drill-report.{lang}.md")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_incident_record_renders_to_the_golden_markdown(tmp_path: Path, lang: str) -> None:
    """A fixed incident (outage from 4 min before the opening to 26 min after it), with
    shedding recorded by the daemon while it was open, renders to the same Markdown, per
    language."""
    times = iter(sample.T0 + sample.timedelta(minutes=m) for m in (0, 5, 9, 30))
    incidents = Incidents(tmp_path, clock=lambda: next(times), operator=lambda: "duty-zhang")
    incident_id = incidents.open(
        "Health-code gateway down under surge",
        severity="II",
        government="Municipal big-data bureau",
        vendor="Gateway vendor on-call",
        started_at=sample.T0 - sample.timedelta(minutes=4),
        service="health-code gateway",
    )
    store = StateStore(tmp_path)
    store.record_event(
        "level_change",
        {"from": "normal", "to": "critical"},
        at=sample.T0 + sample.timedelta(minutes=1),
    )
    store.record_event(
        "shed_action",
        {"action": "essential-only", "service": "health-code", "requests_shed": 48211},
        at=sample.T0 + sample.timedelta(minutes=2),
    )
    store.record_event(
        "level_change",
        {"from": "normal", "to": "critical"},
        at=sample.T0 - sample.timedelta(hours=1),
    )
    store.close()
    incidents.note(incident_id, "Proxy switched to essential routes; queue at the counter.")
    incidents.action(
        incident_id,
        owner="Gateway vendor",
        due=sample.date(2026, 12, 15),
        text="Load-test at 3x peak",
    )
    incidents.close(
        incident_id,
        summary="Capacity doubled; full service restored.",
        recovered_at=sample.T0 + sample.timedelta(minutes=26),
    )
    out = render_run_report(tmp_path, incident_id, fmt="md", lang=lang, now=sample.NOW)
    _check(out.read_text(encoding="utf-8"), f"incident-report.{lang}.md")
