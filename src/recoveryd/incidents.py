"""Real incidents, recorded as they happen: append-only, hash-chained, with who and when.

One file per incident, `state_dir/incidents/<ID>.jsonl` (see `recoveryd.chain`),
ID like `INC-20261123T150102Z` (a `-2`, `-3`... suffix when two open in the
same second). Records, each with `type`, `time` (ISO 8601 UTC, ms, `Z`) and
`operator` (the OS user, and the sudo user when there is one):

- `opened` {id, title, severity, owners: {government, vendor}, started_at, service,
  source}: `started_at` is when the outage began (it may precede the opening),
  `service` the service affected, `source` the configured source whose data is at
  risk (its snapshots give the RPO); each null when not given
- `note` {text}
- `action` {owner, due (YYYY-MM-DD), text}
- `closed` {summary, recovered_at}: when the service was back (null when not given)

The records are the typed models of `recoveryd.incident_records`, through which
they are written here and read here and by the reports.

The report's RTO is `recovered_at` - `started_at` (never the times the commands
were typed); its RPO is the age of the source's last snapshot at `started_at`.

Nothing is ever rewritten. A closed incident takes no more entries. What the
daemon records in the state store while the incident is open (failures,
shedding, drills) joins the incident's timeline when its report is rendered
(`recoveryd.reports`), by time window.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from recoveryd import incident_records as ir
from recoveryd.chain import HashChain
from recoveryd.errors import ExitCode, RecoverydError, RefusedError, UsageError
from recoveryd.state import iso

DEFAULT_SEVERITY = "unassessed"
MAX_TITLE = 200


class IncidentNotFoundError(RecoverydError):
    """No incident with that id in the state directory: a usage mistake (exit 2)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class IncidentSummary:
    """One incident as listed: id, title, severity, status and times."""

    id: str
    title: str
    severity: str
    status: str  # open | closed
    opened: datetime
    closed: datetime | None
    opened_by: str
    entries: int
    intact: bool  # the hash chain verifies

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "opened": iso(self.opened),
            "closed": iso(self.closed) if self.closed else None,
            "opened_by": self.opened_by,
            "entries": self.entries,
            "intact": self.intact,
        }


def current_operator() -> str:
    """The OS user running the command; `alice (sudo as root)` when run through sudo."""
    user = getpass.getuser()
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (sudo as {user})" if sudo and sudo != user else user


class Incidents:
    """The incident records under `state_dir/incidents`. The clock and the operator are
    injectable so that records are reproducible in tests."""

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        operator: Callable[[], str] = current_operator,
    ) -> None:
        self.dir = Path(state_dir) / "incidents"
        self._clock = clock
        self._operator = operator

    def path(self, incident_id: str) -> Path:
        return self.dir / f"{incident_id}.jsonl"

    def open(
        self,
        title: str,
        *,
        severity: str = DEFAULT_SEVERITY,
        government: str | None = None,
        vendor: str | None = None,
        started_at: datetime | None = None,
        service: str | None = None,
        source: str | None = None,
    ) -> str:
        """Record a new incident; returns its id. `started_at` is when the outage began."""
        title = title.strip()
        if not title:
            raise UsageError("incident open: the title is empty; say in a few words what happened")
        if len(title) > MAX_TITLE:
            raise UsageError(f"incident open: the title is longer than {MAX_TITLE} characters")
        now = self._clock()
        if started_at is not None and started_at > now:
            raise UsageError(
                f"incident open: --started-at {iso(started_at)} is in the future; give when "
                "the outage began"
            )
        incident_id = self._reserve(now)
        opened = ir.Opened(
            time=_utc(now),
            operator=self._operator(),
            id=incident_id,
            title=title,
            severity=severity.strip() or DEFAULT_SEVERITY,
            owners=ir.Owners(government=government, vendor=vendor),
            started_at=_utc(started_at) if started_at else None,
            service=(service or "").strip() or None,
            source=source,
        )
        self._append(incident_id, opened)
        return incident_id

    def note(self, incident_id: str, text: str) -> None:
        """Add a note to an open incident."""
        text = self._text(text, "incident note: the note is empty")
        self._open_or_refuse(incident_id)
        self._append(
            incident_id, ir.Note(time=_utc(self._clock()), operator=self._operator(), text=text)
        )

    def action(self, incident_id: str, *, owner: str, due: date, text: str) -> None:
        """Record an action item (owner, due date) on an open incident."""
        text = self._text(text, "incident action: the action text is empty")
        owner = self._text(owner, "incident action: --owner is empty; name who will do it")
        self._open_or_refuse(incident_id)
        action = ir.Action(
            time=_utc(self._clock()), operator=self._operator(), owner=owner, due=due, text=text
        )
        self._append(incident_id, action)

    def close(
        self, incident_id: str, *, summary: str, recovered_at: datetime | None = None
    ) -> None:
        """Close an open incident with a summary of what happened and what was done, and when
        the service was back (`recovered_at`)."""
        summary = self._text(summary, "incident close: --summary is empty; say how it ended")
        self._open_or_refuse(incident_id)
        now = self._clock()
        if recovered_at is not None:
            self._check_recovered(incident_id, recovered_at, now)
        closed = ir.Closed(
            time=_utc(now),
            operator=self._operator(),
            summary=summary,
            recovered_at=_utc(recovered_at) if recovered_at else None,
        )
        self._append(incident_id, closed)

    def _check_recovered(self, incident_id: str, recovered_at: datetime, now: datetime) -> None:
        if recovered_at > now:
            raise UsageError(
                f"incident close: --recovered-at {iso(recovered_at)} is in the future; give "
                "when the service was back"
            )
        opened = ir.parse(next(HashChain(self.path(incident_id)).records()))
        began = ir.outage_began(opened) if isinstance(opened, ir.Opened) else None
        if began is not None and recovered_at < began:
            raise UsageError(
                f"incident close: --recovered-at {iso(recovered_at)} is before the outage "
                f"began ({iso(began)}); check both times"
            )

    def get(self, incident_id: str) -> IncidentSummary:
        path = self._existing(incident_id)
        chain = HashChain(path)
        raws = list(chain.records())
        opened = ir.parse(raws[0]) if raws else None
        if not isinstance(opened, ir.Opened):
            raise IncidentNotFoundError(f"incident: {path} is not an incident record")
        if opened.time is None:
            raise IncidentNotFoundError(
                f"incident: {path} line 1: the `opened` record has no valid `time`; the file "
                "was edited (restore it from a backup of the state directory)"
            )
        closed = ir.closed_of(ir.parse_all(raws))
        return IncidentSummary(
            id=incident_id,
            title=opened.title,
            severity=opened.severity,
            status="closed" if closed is not None else "open",
            opened=opened.time,
            closed=closed.time if closed is not None else None,
            opened_by=opened.operator,
            entries=len(raws),
            intact=chain.verify().ok,
        )

    def all(self) -> list[IncidentSummary]:
        """Every incident, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [self.get(p.stem) for p in self.dir.glob("INC-*.jsonl")]
        return sorted(found, key=lambda i: (i.opened, len(i.id), i.id))

    # --- internals

    def _reserve(self, now: datetime) -> str:
        """Create the record file exclusively, so two operators never share an id."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        base = "INC-" + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        for n in range(1, 1000):
            incident_id = base if n == 1 else f"{base}-{n}"
            try:
                fd = os.open(self.path(incident_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            except FileExistsError:
                continue
            os.close(fd)
            return incident_id
        raise RecoverydError(f"incident: too many incidents opened at {base}; try again")

    def _existing(self, incident_id: str) -> Path:
        if not incident_id or "/" in incident_id or incident_id.startswith("."):
            raise UsageError(f'incident: "{incident_id}" is not an incident id (INC-...)')
        path = self.path(incident_id)
        if not path.is_file():
            raise IncidentNotFoundError(
                f'incident: no incident "{incident_id}" in {self.dir}; '
                "list them with `recoveryd incident list`"
            )
        return path

    def _open_or_refuse(self, incident_id: str) -> None:
        if self.get(incident_id).status == "closed":
            raise RefusedError(
                f"incident {incident_id} is closed and takes no more entries; "
                "open a new incident that refers to it"
            )

    def _append(self, incident_id: str, record: ir.IncidentRecord) -> None:
        HashChain(self.path(incident_id)).append(ir.to_fields(record))

    @staticmethod
    def _text(text: str, message: str) -> str:
        text = text.strip()
        if not text:
            raise UsageError(message)
        return text


def _utc(t: datetime) -> datetime:
    """`t` in UTC, as the record file keeps it (a naive time is read as local time)."""
    return t.astimezone(UTC)
