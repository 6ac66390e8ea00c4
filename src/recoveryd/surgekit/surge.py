"""A governed snapshot for the health-code surge drill: what the daemon does, made observable.

`watch` builds the governor from the configuration, starts it, snapshots one
source through `recoveryd.app.backup` with the governor as admission (so the
upload pauses at a chunk boundary when the level reaches `critical`), waits for
the level to come back to `normal` and the shedding playbooks to finish, then
verifies the snapshot (every byte). Along the way it writes a status file (JSON)
that `await` reads and checks; `--detach` starts it in the background, so a
playbook step can start it before the surge.

    python -m recoveryd.surgekit.surge watch --config CFG --source S --status FILE \
        [--var nginx_dir=...] [--detach]
    python -m recoveryd.surgekit.surge await --status FILE [--timeout 120]

Shedding playbooks run through `recoveryd.drills.api.run_playbook(cfg, path, yes=True,
vars=...)`; `--var` values are passed to them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recoveryd.app.drillops import AppSnapshotOperations
from recoveryd.app.reporting import report_writer
from recoveryd.atomic import write_atomic
from recoveryd.config import LoadedConfig, load_config
from recoveryd.drills.api import DrillResult, LevelSource, run_playbook
from recoveryd.governor import PlaybookRunner
from recoveryd.governor.build import build_governor
from recoveryd.governor.decide import rank
from recoveryd.state import Event, StateStore


@dataclass
class SurgeStatus:
    """What happened, in seconds since the watch started."""

    started: float = field(default_factory=time.time)
    level: str = "normal"
    max_level: str = "normal"
    levels: list[dict[str, Any]] = field(default_factory=list)
    paused: int = 0
    resumed: int = 0
    first_critical_s: float | None = None
    first_pause_s: float | None = None
    shed_actions: list[dict[str, Any]] = field(default_factory=list)
    snapshot_id: str | None = None
    verified: bool | None = None
    error: str | None = None
    done: bool = False

    def write(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=2, default=str).encode(), mode=0o644)


class Recorder:
    """An event sink that forwards to the state store and keeps the surge's story."""

    def __init__(self, inner: StateStore | None, status: SurgeStatus) -> None:
        self.inner = inner
        self.status = status
        self.lock = threading.Lock()

    def record_event(
        self, kind: str, data: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> int:
        data = dict(data or {})
        t = round(time.time() - self.status.started, 3)
        with self.lock:
            s = self.status
            if kind == "level_change" and "governor stopped" in data.get("reasons", ()):
                pass  # the story's level is the last one measured, not the stop's reset
            elif kind == "level_change":
                s.level = str(data["to"])
                s.levels.append({"t": t, "level": s.level})
                if rank(s.level) > rank(s.max_level):  # type: ignore[arg-type]
                    s.max_level = s.level
                if s.level == "critical" and s.first_critical_s is None:
                    s.first_critical_s = t
            elif kind == "paused":
                s.paused += 1
                if s.first_pause_s is None:
                    s.first_pause_s = t
            elif kind == "resumed":
                s.resumed += 1
            elif kind == "shed_action":
                s.shed_actions.append({"t": t, **data})
        return self.inner.record_event(kind, data, source=source) if self.inner else 0

    def events(self, *, kinds: tuple[str, ...] | None = None, limit: int = 1000) -> list[Event]:
        """The state store's events (none without one): the governor reads its last level."""
        return self.inner.events(kinds=kinds, limit=limit) if self.inner else []


def drills_runner(cfg: LoadedConfig, variables: Mapping[str, str]) -> PlaybookRunner:
    """`run_playbook` of the drill runner, bound to this configuration and variables.

    The drill runner and the reports are imported with this module, not at the first
    level change: their imports take seconds on a loaded host, and shedding must not wait.
    """
    write_report = report_writer(cfg)
    ops = AppSnapshotOperations()

    def run(path: Path, level: LevelSource) -> DrillResult:
        result = run_playbook(
            cfg, path, yes=True, vars=dict(variables), report=write_report, ops=ops, level=level
        )
        if result.status != "passed":
            raise RuntimeError(f"playbook {path.name} {result.status}")
        return result

    return run


def governed_backup(
    cfg: LoadedConfig,
    source: str,
    status_path: Path,
    *,
    run_playbook: PlaybookRunner,
    settle_timeout: float = 180.0,
) -> SurgeStatus:
    """Snapshot `source` under the governor, wait for calm, verify; the story as a SurgeStatus."""
    from recoveryd import app

    status = SurgeStatus()
    status_path.parent.mkdir(parents=True, exist_ok=True)
    state = StateStore(cfg.resolve_path(cfg.config.state_dir))
    rec = Recorder(state, status)
    gov = build_governor(cfg, rec, run_playbook)
    stop_writing = threading.Event()

    def writer() -> None:
        while not stop_writing.wait(0.25):
            with rec.lock:
                status.write(status_path)

    status.write(status_path)
    threading.Thread(target=writer, daemon=True).start()
    gov.start()
    try:
        results = app.backup(cfg, [source], admission=gov)
        status.snapshot_id = results[0].id
        gov.wait_for(lambda: gov.level() == "normal", settle_timeout)
        gov.wait_idle(settle_timeout)
        report = app.verify(cfg, [status.snapshot_id], read_data=True, strict=False)
        status.verified = report.ok
    except Exception as exc:  # noqa: BLE001 - the story records the failure; exit code says it
        status.error = f"{type(exc).__name__}: {exc}"
    finally:
        gov.stop()
        stop_writing.set()
        with rec.lock:
            status.done = True
            status.write(status_path)
        state.close()
    return status


def problems(status: Mapping[str, Any]) -> list[str]:
    """What the surge drill expects of the story; empty when all of it happened."""
    out = []
    if status.get("error"):
        out.append(f"the governed snapshot failed: {status['error']}")
    if status.get("max_level") != "critical":
        out.append(f"the governor never reached critical (max {status.get('max_level')})")
    if not status.get("paused") or not status.get("resumed"):
        out.append("the snapshot did not pause and resume at a chunk boundary")
    results = {(a.get("trigger"), a.get("result")) for a in status.get("shed_actions", [])}
    if ("on_enter", "passed") not in results:
        out.append("the essential-only playbook did not run successfully on entering critical")
    if ("on_exit", "passed") not in results:
        out.append("the full-service playbook did not run successfully on leaving critical")
    if status.get("level") != "normal":
        out.append(f"the level did not return to normal (now {status.get('level')})")
    if not status.get("snapshot_id") or status.get("verified") is not True:
        out.append("the snapshot was not completed and verified")
    return out


def _await(path: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("done"):
                break
        time.sleep(0.25)
    else:
        sys.stderr.write(f"{path}: the governed snapshot did not finish within {timeout:g}s\n")
        return 1
    found = problems(data)
    for p in found:
        sys.stderr.write(p + "\n")
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("watch")
    w.add_argument("--config", required=True, type=Path)
    w.add_argument("--source", required=True)
    w.add_argument("--status", required=True, type=Path)
    w.add_argument("--var", action="append", default=[], metavar="K=V")
    w.add_argument("--detach", action="store_true")
    a = sub.add_parser("await")
    a.add_argument("--status", required=True, type=Path)
    a.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    if args.cmd == "await":
        return _await(args.status, args.timeout)
    if args.detach:
        return _detach(argv if argv is not None else sys.argv[1:], args.status)
    cfg = load_config(args.config)
    variables = dict(v.split("=", 1) for v in args.var)
    status = governed_backup(
        cfg, args.source, args.status, run_playbook=drills_runner(cfg, variables)
    )
    return 0 if status.verified else 1


def _detach(argv: list[str], status: Path) -> int:
    """Re-run without --detach in a new session; return once it has written its status."""
    status.parent.mkdir(parents=True, exist_ok=True)
    status.unlink(missing_ok=True)
    log = status.with_suffix(".log").open("ab")
    child = [a for a in argv if a != "--detach"]
    subprocess.Popen(
        [sys.executable, "-m", "recoveryd.surgekit.surge", *child],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if status.exists():
            return 0
        time.sleep(0.05)
    sys.stderr.write(f"the governed snapshot did not start (see {status.with_suffix('.log')})\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
