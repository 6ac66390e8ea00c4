"""The daemon under load shedding: every job asks the governor before it starts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.web import HttpRecorder, poll
from tests.initrepo import init_repositories
from tests.integration.daemon.proc import DaemonProcess, events, recoveryd

pytestmark = pytest.mark.integration


def test_jobs_wait_under_pressure_unless_their_rpo_is_at_stake(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    """At `critical`, a normal-priority backup is deferred (event, metric); one whose RPO
    would break while waiting runs anyway, throttled, with an `rpo_override` alert; the
    level changes are alerted as `shed`; once the pressure drops, deferred work runs."""
    pressure = tmp_path / "pressure"
    pressure.write_text("95\n")
    for name in ("a", "b"):
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            conn.execute("create table t(x)")
            conn.execute("insert into t values (1)")
    config = tmp_path / "recoveryd.yaml"
    config.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "encryption": {"key_file": str(tmp_path / "master.key")},
                "targets": {"local": {"kind": "filesystem", "path": str(tmp_path / "store")}},
                "sources": {
                    "a": {
                        "kind": "sqlite",
                        "path": str(tmp_path / "a.db"),
                        "schedule": "every 1s",
                        "targets": ["local"],
                    },
                    "b": {
                        "kind": "sqlite",
                        "path": str(tmp_path / "b.db"),
                        "schedule": "every 1s",
                        "rpo": "30s",
                        "targets": ["local"],
                    },
                },
                "governor": {
                    "interval": "100ms",
                    "hold": {"enter": "0s", "exit": "0s"},
                    "signals": {
                        "command": {
                            "run": ["cat", str(pressure)],
                            "value": {"elevated": 50, "critical": 90},
                        }
                    },
                },
                "notify": [
                    {
                        "kind": "webhook",
                        "url": f"{http_recorder.url}/hook",
                        "on": ["shed", "rpo_override"],
                    }
                ],
                "daemon": {"prune_schedule": None, "shutdown_grace": "5s"},
            }
        )
    )
    assert recoveryd(config, "key", "generate").returncode == 0
    init_repositories(config)
    state = tmp_path / "state"
    daemon = DaemonProcess(config, state).start()
    try:
        daemon.wait_logged("daemon_ready")

        def alerts() -> list[dict[str, str]]:
            return [r.json() for r in http_recorder.received("/hook")]

        assert poll(lambda: any(a["event"] == "shed" for a in alerts()), 60), alerts()
        assert poll(lambda: any(e["job"] == "backup:a" for e in events(state, "job_deferred")), 60)
        assert poll(lambda: any(a["event"] == "rpo_override" for a in alerts()), 60), alerts()
        status = json.loads(recoveryd(config, "--json", "status").stdout)
        assert status["level"] == "critical"
        assert status["daemon"]["governor"]["reasons"], status["daemon"]

        def held_back() -> list[str]:
            doc = json.loads(recoveryd(config, "--json", "status").stdout)
            return list((doc["daemon"].get("governor") or {}).get("held_back") or [])

        assert poll(lambda: any(h.startswith("backup:a") for h in held_back()), 60), held_back()
        shown = recoveryd(config, "status").stdout
        assert "level: critical" in shown and "because:" in shown, shown
        pressure.write_text("10\n")
        assert poll(
            lambda: any("-> normal" in a["subject"] for a in alerts() if a["event"] == "shed"), 60
        ), alerts()
        assert poll(lambda: any(e.get("result") == "ok" for e in _runs(state, "a")), 60)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert recoveryd(config, "audit", "verify").returncode == 0


def _runs(state: Path, source: str) -> list[dict[str, object]]:
    db = sqlite3.connect(state / "state.db")
    try:
        rows = db.execute(
            "select result, details from runs where kind='daemon_backup' and source=?", (source,)
        ).fetchall()
    finally:
        db.close()
    return [{"result": r, **json.loads(d or "{}")} for r, d in rows]
