"""Bench: the health-code surge with and without the load governor (issue 5).

One run, side by side, the same bounded loopback surge (10x a 20 rps baseline)
against the demo health-code service behind a real nginx:

  (a) baseline            no backup running
  (b) backup_no_governor  a snapshot running, no governor
  (c) backup_governor     a snapshot running under the governor, with shedding

For each: essential-route success rate, p95/p99 latency, requests. For (c): time
from surge start to `critical` and to the upload pausing. Then pgbench TPS during a
PostgreSQL snapshot with and without the governor, and the governor's own CPU.
Writes bench/results/surge-<date>.json and prints it. A few minutes at most.

    .venv/bin/python bench/surge.py [--surge-rps 200] [--surge-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.nginx import (  # noqa: E402
    free_port,
    start_healthcode,
    start_nginx,
    stop_nginx,
    stop_process,
    wait_until,
)
from tests.integration.governor.runner import playbook_runner  # noqa: E402

from recoveryd import app  # noqa: E402
from recoveryd.config import LoadedConfig, load_config  # noqa: E402
from recoveryd.governor import build_governor  # noqa: E402
from recoveryd.state import StateStore  # noqa: E402
from recoveryd.surgekit.loadgen import run_load  # noqa: E402
from recoveryd.surgekit.surge import governed_backup  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SHED = ROOT / "playbooks" / "shed"


def write_config(
    d: Path, governor: str = "", extra_sources: str = "", bandwidth: str = "8MiB/s"
) -> LoadedConfig:
    d.mkdir(parents=True, exist_ok=True)
    (d / "recoveryd.yaml").write_text(
        f"""\
state_dir: {d}/state
encryption: {{key_file: {d}/master.key}}
targets:
  local: {{kind: filesystem, path: {d}/store, max_bandwidth: {bandwidth}}}
sources:
  tiles: {{kind: directory, path: {d.parent}/tiles, targets: [local], priority: normal}}
{extra_sources}
{governor}
"""
    )
    cfg = load_config(d / "recoveryd.yaml")
    app.generate_key(cfg)
    app.init_repositories(cfg)
    return cfg


def surge_governor(front_port: int) -> str:
    return f"""\
governor:
  interval: 250ms
  signals:
    command:  # demand at the front door: nginx's request counter as a rate
      run: [curl, -s, --max-time, "1", "http://127.0.0.1:{front_port}/nginx_status"]
      field: 3
      counter: true
      value: {{elevated: 40, critical: 60, exit_ratio: 0.7}}
  hold: {{enter: 500ms, exit: 2s}}
  on_enter: {{critical: [{SHED}/essential-only.yaml]}}
  on_exit: {{critical: [{SHED}/restore-full-service.yaml]}}
"""


def surge(url: str, rps: float, seconds: float, out: Path) -> dict[str, Any]:
    """The surge from another process (as from outside), so it shares no interpreter lock
    with the backup or the governor; returns the issue's schema for one case plus the
    host's load average (the bench machine may be shared)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "recoveryd.surgekit.loadgen",
            "run",
            "--url",
            url,
            "--rate",
            str(rps),
            "--duration",
            str(seconds),
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    summary = json.loads(out.read_text())
    e, n = summary["essential"], summary["non_essential"]
    return {
        "started_at": summary["started_at"],
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "essential_success": round(e["success"], 5),
        "p50_ms": e["p50_ms"],
        "p95_ms": e["p95_ms"],
        "p99_ms": e["p99_ms"],
        "requests": summary["requests"],
        "essential_requests": e["requests"],
        "non_essential_shed_503": n["shed_503"],
        "non_essential_success": round(n["success"], 5),
    }


def surge_cases(work: Path, rps: float, seconds: float, megabytes: int) -> dict[str, Any]:
    tiles = work / "tiles"
    tiles.mkdir()
    for i in range(megabytes):
        (tiles / f"t{i:04d}.bin").write_bytes(os.urandom(1024 * 1024))
    svc = start_healthcode(work)
    front = start_nginx(work / "nginx", svc.port)
    out: dict[str, Any] = {"cases": {}}
    try:
        run_load(front.url, rate=rps / 10, duration=3)  # warm-up at baseline
        out["cases"]["baseline"] = surge(front.url, rps, seconds, work / "a.json")
        out["cases"]["baseline"].pop("started_at")

        cfg_b = write_config(work / "b")
        done = threading.Event()

        def backups() -> None:  # keep a snapshot running for the whole surge
            while not done.is_set():
                app.backup(cfg_b, ["tiles"])
                shutil.rmtree(work / "b" / "store")
                app.init_repositories(cfg_b)

        t = threading.Thread(target=backups)
        t.start()
        time.sleep(0.5)
        out["cases"]["backup_no_governor"] = surge(front.url, rps, seconds, work / "b.json")
        out["cases"]["backup_no_governor"].pop("started_at")
        done.set()
        t.join()

        cfg_c = write_config(work / "c", surge_governor(front.port))
        status_path = work / "c" / "governor.json"
        story: dict[str, Any] = {}
        watch = threading.Thread(
            target=lambda: story.update(
                s=governed_backup(
                    cfg_c, "tiles", status_path, run_playbook=playbook_runner(cfg_c, front.vars())
                )
            )
        )
        watch.start()
        wait_until(status_path.exists, 30, "the governed snapshot starting")
        out["cases"]["backup_governor"] = surge(front.url, rps, seconds, work / "c.json")
        watch.join(timeout=300)
        s = json.loads(status_path.read_text())
        offset = out["cases"]["backup_governor"].pop("started_at") - s["started"]

        def since_surge(v: float | None) -> float | None:
            return None if v is None else round(v - offset, 3)

        out["level_change_s"] = since_surge(s["first_critical_s"])
        out["upload_pause_s"] = since_surge(s["first_pause_s"])
        out["governed_snapshot"] = {
            "levels": s["levels"],
            "paused": s["paused"],
            "resumed": s["resumed"],
            "shed_actions": [
                {k: a.get(k) for k in ("t", "trigger", "result")} for a in s["shed_actions"]
            ],
            "verified": s["verified"],
            "error": s["error"],
        }
    finally:
        front.reset() if front.mode() != "full-service" else None
        stop_nginx(front)
        stop_process(svc.proc)
    return out


def start_postgres(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    data = work / "pgdata"
    data.mkdir()
    shutil.chown(work, "postgres")
    shutil.chown(data, "postgres")
    work.chmod(0o755)
    runas = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*runas, str(PG_BIN / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *runas,
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={work}",
            "-c",
            "fsync=off",
            "-c",
            "shared_buffers=64MB",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        lambda: (
            subprocess.run(
                ["pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            ).returncode
            == 0
        ),
        30,
        "postgres accepting connections",
    )
    return proc, port


def pgbench(port: int, seconds: int) -> float:
    done = subprocess.run(
        [
            "pgbench",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "4",
            "-j",
            "2",
            "-T",
            str(seconds),
            "bench",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.search(r"tps = ([0-9.]+)", done.stdout)
    return float(m.group(1)) if m else 0.0


class BackupLoop:
    """Snapshots one after another until stopped (a refused one is retried shortly)."""

    def __init__(self, cfg: LoadedConfig, admission: Any) -> None:
        self.cfg = cfg
        self.admission = admission
        self.stop = threading.Event()
        self.counts = {"snapshots": 0, "refused_or_failed": 0, "paused": 0}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                app.backup(self.cfg, ["bench"], admission=self.admission)
                self.counts["snapshots"] += 1
            except Exception:  # noqa: BLE001 - refused while critical: try again
                self.counts["refused_or_failed"] += 1
                self.stop.wait(0.5)


def pgbench_cases(work: Path, seconds: int) -> dict[str, Any]:
    pgdir = work / "pg"
    pgdir.mkdir()
    proc, port = start_postgres(pgdir)
    try:
        pg = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        subprocess.run(["createdb", *pg, "bench"], check=True)
        subprocess.run(
            ["pgbench", *pg, "-i", "-q", "-s", "8", "bench"], check=True, capture_output=True
        )
        src = (
            f'  bench: {{kind: postgresql, dsn: "host=127.0.0.1 port={port} dbname=bench '
            f'user=postgres", targets: [local], priority: normal}}'
        )
        gov = """\
governor:
  interval: 250ms
  signals:
    cpu: {elevated: 80, critical: 95}
  hold: {enter: 1s, exit: 2s}
"""
        result: dict[str, Any] = {"alone": pgbench(port, seconds)}
        for name, governor in (("snapshot_no_governor", ""), ("snapshot_governor", gov)):
            cfg = write_config(work / f"pg-{name}", governor, src)
            state = StateStore(cfg.resolve_path(cfg.config.state_dir))
            governor_obj = build_governor(cfg, state, None) if governor else None
            looper = BackupLoop(cfg, governor_obj)
            if governor_obj is not None:
                governor_obj.start()
            t = threading.Thread(target=looper.run)
            t.start()
            tps = pgbench(port, seconds)
            looper.stop.set()
            counts = looper.counts
            if governor_obj is not None:
                counts["paused"] = sum(1 for e in state.events() if e.kind == "paused")
                result["governor_cpu_s"] = round(governor_obj.cpu_seconds, 3)
                result["governor_ticks"] = governor_obj.ticks
                governor_obj.stop()
            t.join(timeout=120)
            result[name] = tps
            result[f"{name}_detail"] = counts
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--surge-rps", type=float, default=200.0)
    parser.add_argument("--surge-seconds", type=float, default=10.0)
    parser.add_argument("--megabytes", type=int, default=96)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="surge-bench-"))
    work.chmod(0o755)
    started = time.monotonic()
    try:
        result: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "surge": {
                "baseline_rps": args.surge_rps / 10,
                "surge_rps": args.surge_rps,
                "seconds": args.surge_seconds,
            },
        }
        result.update(surge_cases(work, args.surge_rps, args.surge_seconds, args.megabytes))
        result["pgbench_tps"] = pgbench_cases(work, args.pgbench_seconds)
        base = result["cases"]["baseline"]
        gov = result["cases"]["backup_governor"]
        result["targets"] = {
            "essential_success_ge_99pct": gov["essential_success"] >= 0.99,
            "p95_le_2x_baseline": gov["p95_ms"] <= 2 * base["p95_ms"],
            "level_change_le_2s": result["level_change_s"] is not None
            and result["level_change_s"] <= 2.0,
        }
        result["bench_seconds"] = round(time.monotonic() - started, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or ROOT / "bench" / "results" / f"surge-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
