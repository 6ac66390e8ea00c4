"""Running the real `recoveryd daemon` process in tests, and reading what it leaves behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.web import poll
from tests.forkcli import run_recoveryd

ROOT = Path(__file__).resolve().parents[3]


def recoveryd(
    config: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a CLI command to completion (a child forked from the session's pre-started
    interpreter, tests/forkcli.py)."""
    return run_recoveryd(["--config", str(config), *args], cwd=ROOT, env=env, timeout=120)


@dataclass
class DaemonProcess:
    """A `recoveryd daemon` child process; its stdout (JSON log lines) goes to a file."""

    config: Path
    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()

    def start(self) -> DaemonProcess:
        self.log_path = (
            self.state_dir.parent
            / f"daemon-{len(list(self.state_dir.parent.glob('daemon-*.log')))}.log"
        )
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recoveryd", "--config", str(self.config), "daemon", *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=ROOT,
        )
        return self

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event]

    def wait_logged(
        self, event: str, count: int = 1, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        assert poll(
            lambda: len(self.logged(event)) >= count or self.proc.poll() is not None, timeout
        ), f"no {event} in time; log:\n{self.log_path.read_text()[-3000:]}"
        found = self.logged(event)
        assert len(found) >= count, f"daemon exited; log:\n{self.log_path.read_text()[-3000:]}"
        return found

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 120.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def runs(state_dir: Path, kind: str = "daemon_backup") -> list[tuple[str, str, str | None]]:
    """(source, result, error) of the runs of `kind`, oldest first, read from the state store."""
    db = sqlite3.connect(state_dir / "state.db")
    try:
        return list(
            db.execute("select source, result, error from runs where kind=? order by id", (kind,))
        )
    finally:
        db.close()


def events(state_dir: Path, kind: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(state_dir / "state.db")
    try:
        return [
            json.loads(r[0])
            for r in db.execute("select data from events where kind=? order by id", (kind,))
        ]
    finally:
        db.close()


def daemon_json(state_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state_dir / "daemon.json").read_text()))
    except (OSError, ValueError):
        return {}
