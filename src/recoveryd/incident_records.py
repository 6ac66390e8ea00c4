"""The typed records of an incident: written by `recoveryd.incidents`, read by it and the reports.

One record per line of `state_dir/incidents/<ID>.jsonl` (hash-chained, see
`recoveryd.chain`). Every record has `type`, `time` and `operator`; the other
fields are the models below. Writing goes through `to_fields`, which gives the
same JSON the record files have always held (times in ISO 8601 UTC with
milliseconds and `Z`, `due` as YYYY-MM-DD). Reading goes through `parse` and
`parse_all`, which are tolerant: records written by older versions load (an
`opened` record without `started_at`, `service` or `source`), a field of the
wrong type (or a time without an offset) is dropped and its default used, and a
record of an unknown type is skipped, so that one odd line never hides the rest
of an incident. The hash chain verifies the bytes as written, independently of
this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from recoveryd.records import RecordModel, jsonable, parse_tolerant

_Model = RecordModel


class Owners(_Model):
    government: str | None = None
    vendor: str | None = None


class _Record(_Model):
    time: AwareDatetime | None = None  # when the command was typed
    operator: str = ""  # the OS user (`alice (sudo as root)` through sudo)


class Opened(_Record):
    """The first record: what happened, how bad, who owns it; `started_at` is when the
    outage began (it may precede the opening), `service` the service affected and `source`
    the configured source whose data is at risk, each None when not given."""

    type: Literal["opened"] = "opened"
    id: str = ""
    title: str = ""
    severity: str = ""
    owners: Owners = Field(default_factory=Owners)
    started_at: AwareDatetime | None = None
    service: str | None = None
    source: str | None = None


class Note(_Record):
    type: Literal["note"] = "note"
    text: str = ""


class Action(_Record):
    """An action item: who will do what, by when."""

    type: Literal["action"] = "action"
    owner: str = ""
    due: date | None = None
    text: str = ""


class Closed(_Record):
    """The last record: how it ended; `recovered_at` is when the service was back (None
    when not given)."""

    type: Literal["closed"] = "closed"
    summary: str = ""
    recovered_at: AwareDatetime | None = None


IncidentRecord = Annotated[Opened | Note | Action | Closed, Field(discriminator="type")]
_ADAPTER: TypeAdapter[IncidentRecord] = TypeAdapter(IncidentRecord)


# --- writing


def to_fields(record: IncidentRecord) -> dict[str, Any]:
    """The JSON fields of `record` as the record file holds them (the chain adds `seq`,
    `prev` and `hash`). Its `time` must be set: the record is being written now."""
    if record.time is None:
        raise ValueError(f"incident record {record.type!r} has no time")
    return {k: jsonable(v) for k, v in record.model_dump().items()}


# --- reading


def parse(raw: Mapping[str, Any]) -> IncidentRecord | None:
    """The typed record of one line; fields of the wrong type are dropped, None for a
    record of an unknown type."""
    return parse_tolerant(_ADAPTER, raw)


def parse_all(raws: Iterable[Mapping[str, Any]]) -> list[IncidentRecord]:
    """Every record that parses, in order."""
    return [r for r in map(parse, raws) if r is not None]


def opened_of(records: Sequence[IncidentRecord]) -> Opened | None:
    """The `opened` record when it comes first (the file is an incident record), else None."""
    first = records[0] if records else None
    return first if isinstance(first, Opened) else None


def closed_of(records: Sequence[IncidentRecord]) -> Closed | None:
    """The first `closed` record, None while the incident is open."""
    return next((r for r in records if isinstance(r, Closed)), None)


def actions_of(records: Sequence[IncidentRecord]) -> list[Action]:
    return [r for r in records if isinstance(r, Action)]


def outage_began(opened: Opened) -> datetime | None:
    """When the outage began: `started_at` when given, else when the incident was opened."""
    return opened.started_at or opened.time


def times(records: Sequence[IncidentRecord]) -> list[datetime]:
    """Every time the records hold: when each was written, when the outage began and when
    the service was back."""
    found: list[datetime | None] = []
    for r in records:
        found.append(r.time)
        if isinstance(r, Opened):
            found.append(r.started_at)
        elif isinstance(r, Closed):
            found.append(r.recovered_at)
    return [t for t in found if t is not None]
