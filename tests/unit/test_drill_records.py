"""Typed drill journal records: strict to write, tolerant to read, one outage definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recoveryd import drill_records as dr
from tests.unit.reports import sample

T0 = datetime(2026, 11, 23, 15, 1, 2, tzinfo=UTC)


def test_a_journal_written_by_an_older_version_loads_whole() -> None:
    """Every record of the sample journal (the format before typed records) parses into its
    typed model, and a mark without its step gets the step journaled just before it."""
    raws = sample.journal_records()
    typed = dr.parse_all(raws)
    assert len(typed) == len(raws)
    started = dr.first(typed, dr.RunStarted)
    assert started.playbook.name == "pg-primary-loss" and started.objectives.rto_s == 120.0
    fault = next(r for r in typed if isinstance(r, dr.MarkRecord) and r.mark == "fault")
    assert fault.step == "stop the primary" and fault.step_start == T0 + timedelta(seconds=1)


def test_odd_fields_and_unknown_records_do_not_hide_the_rest() -> None:
    """A field of the wrong type falls back to its default; a record of an unknown type is
    skipped; neither stops the other records from loading."""
    raws = [
        {
            "type": "run_started",
            "time": "2026-11-23T15:01:02.000Z",
            "dry_run": "maybe",
            "run_id": "r",
        },
        {"type": "from_the_future", "time": "2026-11-23T15:01:03.000Z"},
        {"type": "step", "time": "2026-11-23T15:01:04.000Z", "name": "s", "attempts": "many"},
    ]
    started, step = dr.parse_all(raws)
    assert isinstance(started, dr.RunStarted) and started.run_id == "r" and not started.dry_run
    assert isinstance(step, dr.StepRecord) and step.name == "s" and step.attempts is None


def test_writing_an_unknown_field_or_type_is_refused() -> None:
    """The journal's contract is the typed models: a writer's typo fails loudly."""
    with pytest.raises(ValueError, match="no field"):
        dr.build("phase", {"phase": "steps", "stauts": "started"})
    with pytest.raises(ValueError, match="unknown journal record type"):
        dr.build("phaze", {})


def test_the_outage_begins_at_fault_start_or_the_start_of_the_fault_step() -> None:
    """`fault_start` wins; otherwise the start of the step marked `fault`; it ends at
    `recovered`, and without `recovered` it is not measured."""
    fault = dr.MarkRecord(time=T0 + timedelta(seconds=5), mark="fault", step_start=T0)
    back = dr.MarkRecord(time=T0 + timedelta(seconds=20), mark="recovered")
    early = dr.MarkRecord(time=T0 - timedelta(seconds=2), mark="fault_start")
    assert dr.outage_seconds([fault, back]) == 20.0
    assert dr.outage_seconds([early, fault, back]) == 22.0
    assert dr.outage_seconds([fault]) is None
