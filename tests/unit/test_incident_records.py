"""Typed incident records: written as the record files always held them, tolerant to read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from recoveryd import incident_records as ir
from recoveryd.chain import HashChain
from recoveryd.incidents import IncidentNotFoundError, Incidents
from recoveryd.reports import load_report

T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
CHAIN_KEYS = ("seq", "prev", "hash")


def _clock(start: datetime = T0) -> Callable[[], datetime]:
    ticks = iter(start + timedelta(minutes=i) for i in range(100))
    return lambda: next(ticks)


def _write_raw(tmp_path: Path, incident_id: str, records: list[dict[str, object]]) -> Path:
    """An incident record file written record by record, as another version wrote it."""
    chain = HashChain(tmp_path / "incidents" / f"{incident_id}.jsonl")
    for record in records:
        chain.append(record)
    return chain.path


def test_a_record_written_by_the_current_code_round_trips(tmp_path: Path) -> None:
    """Every record `Incidents` writes parses into its model with every field, and the
    model gives back exactly the fields on disk (the chain's own keys aside)."""
    inc = Incidents(tmp_path, clock=_clock(), operator=lambda: "duty-wu")
    incident_id = inc.open(
        "Registry down",
        severity="II",
        government="Big-data bureau",
        started_at=T0 - timedelta(minutes=10),
        service="residents portal",
        source="population",
    )
    inc.note(incident_id, "failover started")
    inc.action(incident_id, owner="DBA team", due=date(2026, 12, 1), text="second standby")
    inc.close(incident_id, summary="restored", recovered_at=T0 + timedelta(minutes=2))
    raws = list(HashChain(inc.path(incident_id)).records())
    typed = ir.parse_all(raws)
    assert [type(r) for r in typed] == [ir.Opened, ir.Note, ir.Action, ir.Closed]
    opened, note, action, closed = typed
    assert isinstance(opened, ir.Opened) and opened.id == incident_id
    assert opened.owners == ir.Owners(government="Big-data bureau", vendor=None)
    assert opened.started_at == T0 - timedelta(minutes=10) and opened.time == T0
    assert opened.service == "residents portal" and opened.source == "population"
    assert isinstance(note, ir.Note) and note.text == "failover started"
    assert isinstance(action, ir.Action) and action.due == date(2026, 12, 1)
    assert isinstance(closed, ir.Closed) and closed.recovered_at == T0 + timedelta(minutes=2)
    assert {r.operator for r in typed} == {"duty-wu"}
    for raw, record in zip(raws, typed, strict=True):
        on_disk = {k: v for k, v in raw.items() if k not in CHAIN_KEYS}
        assert ir.to_fields(record) == on_disk


def test_a_field_of_the_wrong_type_falls_back_to_its_default(tmp_path: Path) -> None:
    """A field of the wrong type (a number for a title, a due date that is not one, a time
    without an offset) is dropped and its default used; the rest of the record and the
    other records still load, and the incident is listed and reported."""
    raws: list[dict[str, object]] = [
        {
            "type": "opened",
            "time": "2026-11-23T08:00:00.000Z",
            "operator": "duty-wu",
            "id": "INC-20261123T080000Z",
            "title": 42,
            "severity": "I",
            "owners": "the vendor",
            "started_at": "2026-11-23T07:50:00",
        },
        {
            "type": "action",
            "time": "2026-11-23T08:01:00.000Z",
            "operator": "duty-wu",
            "owner": "DBA",
            "due": "soon",
            "text": "add a standby",
        },
    ]
    opened, action = ir.parse_all(raws)
    assert isinstance(opened, ir.Opened)
    assert opened.title == "" and opened.severity == "I" and opened.operator == "duty-wu"
    assert opened.owners == ir.Owners() and opened.started_at is None
    assert opened.time == T0
    assert isinstance(action, ir.Action)
    assert action.due is None and action.owner == "DBA" and action.text == "add a standby"
    _write_raw(tmp_path, "INC-20261123T080000Z", raws)
    listed = Incidents(tmp_path).get("INC-20261123T080000Z")
    assert listed.severity == "I" and listed.status == "open" and listed.intact
    report = load_report(tmp_path, "INC-20261123T080000Z", now=T0 + timedelta(hours=1))
    assert report.title == "INC-20261123T080000Z"  # no usable title: the id stands in
    assert [(a.text, a.owner, a.due) for a in report.actions if a.origin == "recorded"] == [
        ("add a standby", "DBA", None)
    ]


def test_a_record_of_an_unknown_type_is_skipped() -> None:
    """A record type this version does not know (written by a newer one) is skipped, and
    so is a line without a type; the records around them load."""
    raws: list[dict[str, object]] = [
        {"type": "opened", "time": "2026-11-23T08:00:00.000Z", "title": "x"},
        {"type": "escalated", "time": "2026-11-23T08:01:00.000Z", "to": "minister"},
        {"time": "2026-11-23T08:01:30.000Z", "text": "no type"},
        {"type": "note", "time": "2026-11-23T08:02:00.000Z", "text": "still here"},
    ]
    assert ir.parse(raws[1]) is None and ir.parse(raws[2]) is None
    typed = ir.parse_all(raws)
    assert [r.type for r in typed] == ["opened", "note"]


def test_an_old_record_without_outage_times_loads(tmp_path: Path) -> None:
    """An incident recorded before `started_at`, `service`, `source` and `recovered_at`
    existed loads: they are None, the outage is taken to begin at the opening, and its
    report claims no RTO."""
    incident_id = "INC-20261123T080000Z"
    old = [
        {
            "type": "opened",
            "time": "2026-11-23T08:00:00.000Z",
            "operator": "duty-wu",
            "id": incident_id,
            "title": "Registry down",
            "severity": "II",
            "owners": {"government": None, "vendor": "on-call"},
        },
        {
            "type": "closed",
            "time": "2026-11-23T08:30:00.000Z",
            "operator": "duty-wu",
            "summary": "restored",
        },
    ]
    opened, closed = ir.parse_all(old)
    assert isinstance(opened, ir.Opened) and isinstance(closed, ir.Closed)
    assert opened.started_at is None and opened.service is None and opened.source is None
    assert ir.outage_began(opened) == T0
    assert closed.recovered_at is None and closed.summary == "restored"
    _write_raw(tmp_path, incident_id, old)
    listed = Incidents(tmp_path).get(incident_id)
    assert listed.status == "closed" and listed.closed == T0 + timedelta(minutes=30)
    report = load_report(tmp_path, incident_id, now=T0 + timedelta(hours=1))
    rto = report.objective("rto")
    assert rto is not None and rto.achieved_s is None
    assert report.owners.vendor == "on-call" and report.ended == T0 + timedelta(minutes=30)


def test_an_opened_record_without_a_time_is_one_clear_error(tmp_path: Path) -> None:
    """An `opened` record edited to lose its time is named in one sentence (file, line,
    key), not a KeyError."""
    path = _write_raw(
        tmp_path, "INC-20261123T080000Z", [{"type": "opened", "title": "x", "time": "later"}]
    )
    with pytest.raises(IncidentNotFoundError, match="line 1: the `opened` record has no valid"):
        Incidents(tmp_path).get("INC-20261123T080000Z")
    with pytest.raises(IncidentNotFoundError) as caught:
        Incidents(tmp_path).all()
    assert str(path) in caught.value.message


def test_writing_a_record_without_its_time_is_refused() -> None:
    """A record is written with the time it was made: a writer that forgot it fails loudly."""
    with pytest.raises(ValueError, match="has no time"):
        ir.to_fields(ir.Note(text="x"))
