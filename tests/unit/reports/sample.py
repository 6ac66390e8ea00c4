"""A fixed drill journal and state store (the documented journal format), shared by the report
tests: a PostgreSQL primary-loss drill that recovered within its RTO but missed its RPO, with a
secret in a step's output and load shedding during the run."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from recoveryd.chain import HashChain
from recoveryd.config import Config
from recoveryd.state import StateStore, iso

RUN_ID = "20261123T150102Z-pg-primary-loss"
T0 = datetime(2026, 11, 23, 15, 1, 2, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)
SECRET = "Zq8-vault-S3cret-77"


def at(seconds: float) -> str:
    return iso(T0 + timedelta(seconds=seconds))


def _step(
    phase: str, name: str, kind: str, start: float, end: float, status: str = "ok", **extra: Any
) -> dict[str, Any]:
    record = {
        "type": "probe" if phase != "steps" and "destructive" not in extra else "step",
        "time": at(end),
        "phase": phase,
        "name": name,
        "kind": kind,
        "start": at(start),
        "end": at(end),
        "status": status,
        "attempts": 1,
        "destructive": False,
        "output": "",
        "error": None,
    }
    record.update(extra)
    return record


def journal_records() -> list[dict[str, Any]]:
    return [
        {
            "type": "run_started",
            "time": at(0),
            "run_id": RUN_ID,
            "playbook": {
                "name": "pg-primary-loss",
                "description": "The primary population database host is lost; "
                "the standby takes over.",
                "path": "playbooks/pg-failover.yaml",
                "sha256": "3f5a0c2e9b1d47a8c6e0f2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2c4e6f8a0b2c4",
            },
            "operator": "ops-li",
            "dry_run": False,
            "objectives": {"rto_s": 120.0, "rpo_s": 5.0},
            "owners": {
                "government": "Provincial big-data bureau, DR duty officer",
                "vendor": "Cloud vendor on-call",
            },
            "sources": ["population"],
        },
        {"type": "phase", "time": at(0.05), "phase": "preflight", "status": "started"},
        _step("preflight", "standby is streaming", "sql", 0.05, 0.31, output="streaming"),
        {"type": "phase", "time": at(0.32), "phase": "preflight", "status": "passed"},
        {"type": "phase", "time": at(0.33), "phase": "steady_state", "status": "started"},
        _step("steady_state", "service answers", "http", 0.33, 0.52, output="HTTP 200"),
        {"type": "phase", "time": at(0.53), "phase": "steady_state", "status": "passed"},
        {"type": "phase", "time": at(0.6), "phase": "steps", "status": "started"},
        {"type": "approval", "time": at(0.8), "user": "ops-wang"},
        _step(
            "steps",
            "stop the primary",
            "ssh",
            1.0,
            2.5,
            destructive=True,
            output=(
                "connecting to postgresql://dr:" + SECRET + "@127.0.0.1:5433/population\n"
                "PGPASSWORD=" + SECRET + " pg_ctl stop -m fast\n"
                "vault returned " + SECRET + "\nserver stopped"
            ),
        ),
        {"type": "mark", "time": at(2.5), "mark": "fault"},
        _step(
            "steps",
            "promote the standby",
            "ssh",
            2.6,
            5.0,
            destructive=False,
            output="waiting for server to promote.... done\nserver promoted",
        ),
        _step("stop_condition", "host not overloaded", "pressure", 10.0, 10.01),
        {
            "type": "event",
            "time": at(12.0),
            "kind": "level_change",
            "data": {"from": "normal", "to": "elevated", "reasons": ["cpu"], "cpu": 82.5},
        },
        {
            "type": "event",
            "time": at(40.0),
            "kind": "shed_action",
            "data": {
                "action": "essential-only",
                "service": "health-code-gateway",
                "requests_shed": 1520,
            },
        },
        _step("stop_condition", "host not overloaded", "pressure", 60.0, 60.01),
        _step(
            "steps",
            "standby accepts writes",
            "wait",
            5.0,
            97.9,
            destructive=False,
            attempts=12,
            output="t",
        ),
        {"type": "mark", "time": at(97.9), "mark": "recovered"},
        {"type": "phase", "time": at(98.0), "phase": "steps", "status": "passed"},
        {"type": "phase", "time": at(98.1), "phase": "steady_state_after", "status": "started"},
        _step("steady_state_after", "service answers", "http", 98.1, 98.4, output="HTTP 200"),
        {"type": "phase", "time": at(98.5), "phase": "steady_state_after", "status": "passed"},
        {
            "type": "run_finished",
            "time": at(100.0),
            "status": "failed",
            "rto_s": 95.4,
            "rpo_s": 7.2,
            "objectives_met": False,
            "steady_state_restored": True,
            "error": "an objective was missed",
        },
    ]


def write_journal(state_dir: Path, records: list[dict[str, Any]] | None = None) -> Path:
    path = state_dir / "drills" / RUN_ID / "journal.jsonl"
    chain = HashChain(path)
    for record in records if records is not None else journal_records():
        chain.append(record)
    return path


def tamper(path: Path) -> None:
    """Edit a recorded value in place, the way someone hiding a failure would."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, raw in enumerate(lines):
        rec = json.loads(raw)
        if rec.get("type") == "run_finished":
            rec["status"] = "passed"
            rec["rpo_s"] = 1.0
            lines[i] = json.dumps(rec, ensure_ascii=False, sort_keys=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_state(state_dir: Path) -> None:
    """Backups of `population` before the drill; shedding and a failure during it."""
    store = StateStore(state_dir)
    try:
        run = store.start_run("backup", source="population", at=T0 - timedelta(hours=3, minutes=2))
        store.end_run(
            run,
            "ok",
            snapshot_id="5e1c9a0b",
            bytes_read=10,
            bytes_stored=5,
            at=T0 - timedelta(hours=3),
        )
        run = store.start_run("verify", source="population", at=T0 - timedelta(days=1, minutes=5))
        store.end_run(run, "ok", at=T0 - timedelta(days=1))
        run = store.start_run(
            "restore_drill", source="population", at=T0 - timedelta(days=6, minutes=20)
        )
        store.end_run(run, "ok", details={"rto_s": 842.0}, at=T0 - timedelta(days=6))
        store.record_event(
            "deferred",
            {"job": "verify", "reason": "load level elevated"},
            source="population",
            at=T0 + timedelta(seconds=50),
        )
        store.record_event(
            "level_change", {"from": "elevated", "to": "normal"}, at=T0 + timedelta(seconds=90)
        )
        run = store.start_run("copy", source="population", at=T0 + timedelta(seconds=20))
        store.end_run(
            run,
            "failed",
            error="offsite: connection reset by peer",
            at=T0 + timedelta(seconds=70),
        )
    finally:
        store.close()


def config() -> Config:
    return Config.model_validate(
        {
            "state_dir": "/var/lib/recoveryd",
            "encryption": {"key_file": "master.key"},
            "targets": {"local": {"kind": "filesystem", "path": "/srv/backups"}},
            "sources": {
                "population": {
                    "kind": "postgresql",
                    "dsn": "host=db1 dbname=population user=backup",
                    "targets": ["local"],
                    "rpo": "4h",
                }
            },
        }
    )


def make_state_dir(state_dir: Path) -> Path:
    """A state directory with the sample journal and state; returns the journal's path."""
    path = write_journal(state_dir)
    write_state(state_dir)
    return path


__all__ = ["NOW", "RUN_ID", "SECRET", "T0", "date", "timedelta"]
