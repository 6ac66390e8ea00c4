"""`recoveryd incident open|note|action|close|list`: record a real incident as it happens.

Each entry is appended to `state_dir/incidents/<ID>.jsonl` (hash-chained) with
the operator and the time; `recoveryd report ID` renders the incident report.
"""

from __future__ import annotations

import argparse
import contextlib
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recoveryd.cli import anchored, output
from recoveryd.cli.context import Context
from recoveryd.errors import UsageError
from recoveryd.incidents import DEFAULT_SEVERITY, Incidents, IncidentSummary


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "incident", help="record a real incident: open, note, action, close, list"
    )
    isub = p.add_subparsers(dest="incident_command", metavar="ACTION", required=True)
    o = isub.add_parser("open", help="open an incident; prints its id")
    o.add_argument("title", help="what happened, in a few words")
    o.add_argument("--severity", default=DEFAULT_SEVERITY, help="e.g. I, II, III, IV")
    o.add_argument("--government", help="government owner (office, duty officer)")
    o.add_argument("--vendor", help="vendor owner (company, on-call)")
    o.add_argument(
        "--started-at", metavar="TIME", help="when the outage began (ISO 8601; default: unknown)"
    )
    o.add_argument("--service", help="the service affected")
    o.add_argument("--source", help="the configured source whose data is at risk (gives the RPO)")
    n = isub.add_parser("note", help="add a note to an open incident")
    n.add_argument("id")
    n.add_argument("text")
    a = isub.add_parser("action", help="record an action item with owner and due date")
    a.add_argument("id")
    a.add_argument("text")
    a.add_argument("--owner", required=True, help="who will do it")
    a.add_argument("--due", required=True, help="due date, YYYY-MM-DD")
    c = isub.add_parser("close", help="close an incident with a summary")
    c.add_argument("id")
    c.add_argument("--summary", required=True, help="how it ended and what was done")
    c.add_argument(
        "--recovered-at", metavar="TIME", help="when the service was back (ISO 8601; gives the RTO)"
    )
    isub.add_parser("list", help="list incidents")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    incidents = Incidents(cfg.resolve_path(cfg.config.state_dir))
    command = args.incident_command
    if command == "open":
        if args.source is not None and args.source not in cfg.config.sources:
            known = ", ".join(sorted(cfg.config.sources)) or "none configured"
            raise UsageError(
                f'incident open: --source "{args.source}" is not a configured source; use one '
                f"of: {known}"
            )
        incident_id = incidents.open(
            args.title,
            severity=args.severity,
            government=args.government,
            vendor=args.vendor,
            started_at=_when(args.started_at, "--started-at", cfg.config.daemon.timezone),
            service=args.service,
            source=args.source,
        )
        _done(ctx, incidents, incident_id, f"opened incident {incident_id}")
    elif command == "note":
        incidents.note(args.id, args.text)
        _done(ctx, incidents, args.id, f"note added to {args.id}")
    elif command == "action":
        incidents.action(args.id, owner=args.owner, due=_due(args.due), text=args.text)
        _done(ctx, incidents, args.id, f"action item added to {args.id}")
    elif command == "close":
        recovered = _when(args.recovered_at, "--recovered-at", cfg.config.daemon.timezone)
        incidents.close(args.id, summary=args.summary, recovered_at=recovered)
        _done(
            ctx,
            incidents,
            args.id,
            f"closed incident {args.id}; report: recoveryd report {args.id}",
        )
    else:
        found = incidents.all()
        _list(ctx, found)
        anchored.check(cfg, lambda name: name.startswith("incidents/"), "incident records")
    return 0


def _list(ctx: Context, found: list[IncidentSummary]) -> None:
    if ctx.json:
        output.emit_json([i.to_json() for i in found])
        return
    output.table(
        ("ID", "STATUS", "SEVERITY", "OPENED", "BY", "TITLE"),
        [
            (
                i.id,
                i.status if i.intact else f"{i.status} (TAMPERED)",
                i.severity,
                i.opened.strftime("%Y-%m-%d %H:%M:%SZ"),
                i.opened_by,
                i.title,
            )
            for i in found
        ],
    )


def _done(ctx: Context, incidents: Incidents, incident_id: str, text: str) -> None:
    if ctx.json:
        summary = incidents.get(incident_id).to_json()
        summary["record"] = str(Path(incidents.path(incident_id)))
        output.emit_json(summary)
    else:
        output.line(incident_id if text.startswith("opened") else text)


def _when(text: str | None, option: str, timezone: str | None) -> datetime | None:
    """An ISO 8601 time; without an offset it is read in `daemon.timezone` (UTC if unset)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"incident: {option} {text!r} is not a time; write it as 2026-11-23T15:01:02+08:00"
        ) from None
    if when.tzinfo is None:
        zone: tzinfo = UTC
        if timezone:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                zone = ZoneInfo(timezone)
        when = when.replace(tzinfo=zone)
    return when.astimezone(UTC)


def _due(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"incident action: --due {text!r} is not a date; write it as YYYY-MM-DD"
        ) from None
