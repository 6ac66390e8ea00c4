"""`recoveryd fleet status [--json]`: the members of the fleet, their sites, heartbeats and
the jobs each owns, as the coordination service lists them now.

It reads the group without joining it (it owns nothing) and works the owners out
with the same consistent-hash partition the members use. `--json` prints
`{"group", "members": [{"name", "site", "alive", "last_heartbeat", "jobs": [...]}]}`.
A member is listed while its key lives in etcd, on the lease its heartbeats renew, so
every listed member is `alive`; `last_heartbeat` is that member's own clock at its last
heartbeat, shown for information and never compared with this host's clock.
Exit 2 without a `fleet` section; exit 1 when the coordination service does not
answer at any of its URLs.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from recoveryd.cli import output
from recoveryd.cli.context import Context
from recoveryd.errors import ConfigError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "fleet", help="fleet mode: the members, their sites, heartbeats and owned jobs"
    )
    fs = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    s = fs.add_parser("status", help="members, sites, heartbeats and the jobs each owns")
    s.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from recoveryd.daemon.fleetmode import assign
    from recoveryd.daemon.schedule import plan_config
    from recoveryd.fleet import open_coordination

    cfg = ctx.config
    fleet = cfg.config.fleet
    if fleet is None:
        raise ConfigError(
            "the configuration has no fleet section; add fleet.coordination to run a fleet",
            key="fleet",
        )
    specs = {s.id: s for s in plan_config(cfg)}
    observer = f"status-{socket.gethostname().split('.', 1)[0]}-{os.getpid()}"
    coord = open_coordination(
        fleet.coordination, group=fleet.group, member=observer, lease=fleet.lease,
        serves=(), observer=True,
    )  # fmt: skip
    try:
        members = coord.members()
    finally:
        coord.leave()

    def site(spec: Any) -> str | None:
        src = cfg.config.sources.get(spec.source or "")
        return src.site if src is not None else None

    jobs = assign(specs, members, site)
    entries = [
        {
            "name": m.name,
            "site": m.site,
            "alive": True,  # listed: its key lives on its etcd lease
            "last_heartbeat": m.heartbeat.isoformat() if m.heartbeat else None,
            "jobs": jobs.get(m.name, []),
        }
        for m in members
    ]
    if ctx.json:
        output.emit_json({"group": fleet.group, "members": entries})
        return 0
    output.line(f"fleet {fleet.group}: {len(members)} member(s)")
    rows = []
    for m, entry in zip(members, entries, strict=True):
        owned = jobs.get(m.name, [])
        shown = ", ".join(owned[:4]) + (" ..." if len(owned) > 4 else "")
        alive = "yes" if entry["alive"] else "NO"
        rows.append(
            (m.name, m.site or "-", alive, entry["last_heartbeat"] or "-", len(owned), shown)
        )
    if rows:
        output.table(["member", "site", "alive", "last heartbeat", "jobs", "owns"], rows)
    if jobs.get(""):
        output.warn(f"no live member serves the site of: {', '.join(jobs[''])}")
    return 0
