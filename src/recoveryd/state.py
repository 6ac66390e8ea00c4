"""Local state in SQLite (WAL): runs and events. The store stays the source of truth for snapshots.

A state database that cannot be opened, read or written (its filesystem full,
its files unreadable) raises StateError: one sentence naming the state directory
and the fix, never a bare SQLite error.

Every long operation is a run (kind, source, target, start, end, result,
bytes, error); everything else worth showing later — level changes, deferrals,
alerts, drill milestones — is an event. Reports and `status` read from here.
Errors, details and event data pass the one redactor (`recoveryd.secrets`) on the
way in: no secret is ever stored here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recoveryd.errors import RecoverydError
from recoveryd.secrets import redact, redact_tree

SCHEMA = """
create table if not exists runs (
    id integer primary key,
    kind text not null,  -- backup, verify, prune, copy, restore, restore_drill, drill
    source text,
    target text,
    started_at text not null,      -- ISO 8601 UTC
    ended_at text,
    result text,                   -- ok | failed | aborted | deferred | dry_run | running
    bytes_read integer,
    bytes_stored integer,
    snapshot_id text,
    error text,
    details text                   -- JSON
);
create index if not exists runs_source on runs(source, kind, started_at);
create table if not exists events (
    id integer primary key,
    time text not null,
    kind text not null,  -- level_change, deferred, paused, resumed, rpo_override...
    source text,
    data text not null             -- JSON
);
create index if not exists events_time on events(time);
"""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class StateError(RecoverydError):
    """The state database cannot be used (disk full, permissions, damage)."""


@contextmanager
def _guard(state_dir: Path, doing: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StateError(
            f"state directory {state_dir}: cannot {doing} state.db ({exc}); free space on "
            "its filesystem or fix its permissions, then run again"
        ) from None


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    source: str | None
    target: str | None
    started_at: datetime
    ended_at: datetime | None
    result: str | None
    bytes_read: int | None
    bytes_stored: int | None
    snapshot_id: str | None
    error: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class Event:
    id: int
    time: datetime
    kind: str
    source: str | None
    data: Mapping[str, Any]


def own_like_parent(path: Path) -> None:
    """Give a file root created in a service's directory to the directory's owner.

    An operator running a command as root (`key generate`, `backup`) must not leave
    `state.db` or `audit.jsonl` owned by root in `/var/lib/recoveryd`, where the
    service user could no longer write them. Does nothing when not root."""
    if os.geteuid() != 0:
        return
    try:
        parent = path.parent.stat()
        if path.stat().st_uid != parent.st_uid:
            os.chown(path, parent.st_uid, parent.st_gid)
    except OSError:
        return  # absent (WAL files come and go) or not ours to change


class StateStore:
    """Thread-safe access to `state_dir/state.db`."""

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.path = self.dir / "state.db"
        self._lock = threading.Lock()
        with _guard(self.dir, "open"):
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("pragma journal_mode=wal")
            self._db.execute("pragma synchronous=full")
            self._db.execute("pragma busy_timeout=10000")
            self._db.executescript(SCHEMA)
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            own_like_parent(self.dir / name)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _guard(self.dir, "write"):
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def start_run(
        self,
        kind: str,
        *,
        source: str | None = None,
        target: str | None = None,
        at: datetime | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "insert into runs(kind, source, target, started_at, result, details) "
                "values (?, ?, ?, ?, 'running', ?)",
                (kind, source, target, iso(at or utcnow()), json.dumps(dict(details or {}))),
            )
            return int(cur.lastrowid or 0)

    def end_run(
        self,
        run_id: int,
        result: str,
        *,
        bytes_read: int | None = None,
        bytes_stored: int | None = None,
        snapshot_id: str | None = None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "update runs set ended_at=?, result=?, bytes_read=?, bytes_stored=?, "
                "snapshot_id=?, error=?, details=? where id=?",
                (
                    iso(at or utcnow()),
                    result,
                    bytes_read,
                    bytes_stored,
                    snapshot_id,
                    redact(error) if error else error,
                    json.dumps(redact_tree(dict(details or {})), default=str),
                    run_id,
                ),
            )

    def record_event(
        self,
        kind: str,
        data: Mapping[str, Any] | None = None,
        *,
        source: str | None = None,
        at: datetime | None = None,
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "insert into events(time, kind, source, data) values (?, ?, ?, ?)",
                (
                    iso(at or utcnow()),
                    kind,
                    source,
                    json.dumps(redact_tree(dict(data or {})), default=str),
                ),
            )
            return int(cur.lastrowid or 0)

    def runs(
        self,
        *,
        kind: str | None = None,
        source: str | None = None,
        result: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        """Newest first."""
        sql = "select * from runs where 1=1"
        params: list[Any] = []
        for col, val in (("kind", kind), ("source", source), ("result", result)):
            if val is not None:
                sql += f" and {col}=?"
                params.append(val)
        sql += " order by started_at desc, id desc limit ?"
        params.append(limit)
        with self._lock, _guard(self.dir, "read"):
            rows = self._db.execute(sql, params).fetchall()
        return [_run(r) for r in rows]

    def last_run(self, kind: str, source: str, result: str | None = "ok") -> Run | None:
        found = self.runs(kind=kind, source=source, result=result, limit=1)
        return found[0] if found else None

    def events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: tuple[str, ...] | None = None,
        limit: int = 10000,
    ) -> list[Event]:
        """Oldest first."""
        sql = "select id, time, kind, source, data from events where 1=1"
        params: list[Any] = []
        if since is not None:
            sql += " and time >= ?"
            params.append(iso(since))
        if until is not None:
            sql += " and time <= ?"
            params.append(iso(until))
        if kinds:
            sql += f" and kind in ({','.join('?' for _ in kinds)})"
            params.extend(kinds)
        sql += " order by time, id limit ?"
        params.append(limit)
        with self._lock, _guard(self.dir, "read"):
            rows = self._db.execute(sql, params).fetchall()
        return [Event(r[0], parse_iso(r[1]), r[2], r[3], json.loads(r[4])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _run(r: tuple[Any, ...]) -> Run:
    return Run(
        id=r[0],
        kind=r[1],
        source=r[2],
        target=r[3],
        started_at=parse_iso(r[4]),
        ended_at=parse_iso(r[5]) if r[5] else None,
        result=r[6],
        bytes_read=r[7],
        bytes_stored=r[8],
        snapshot_id=r[9],
        error=r[10],
        details=json.loads(r[11] or "{}"),
    )
