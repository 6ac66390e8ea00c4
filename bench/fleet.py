"""Bench: fleet mode with 1,000 sources over 3 daemons and a real 3-node etcd cluster.

Starts a 3-node etcd cluster on loopback (tests/fixtures/etcd.py) and three real
`recoveryd daemon` processes sharing one configuration of N SQLite sources
(daily schedules, none due during the measurement), each with its own state
directory. Once every member sees the others and owns its share, it samples each
daemon's CPU time and resident memory for the window (default 60 s): the cost of
the heartbeats, the member list and the ownership of every job every third of a
lease. Then it kills the member that owns most with SIGKILL and measures the time
until the two survivors own every job between them (the rebalance: bounded by the
lease, after which etcd drops the dead member's key). Also timed in-process: one
ownership computation over the N jobs (what each refresh does).

    .venv/bin/python bench/fleet.py [--sources 1000] [--seconds 60] [--lease 10]

Writes bench/results/fleet-YYYY-MM-DD.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.etcd import EtcdCluster  # noqa: E402

from recoveryd.daemon.fleetmode import assign  # noqa: E402
from recoveryd.daemon.schedule import JobSpec  # noqa: E402
from recoveryd.fleet import Member  # noqa: E402

NAMES = ("core-1", "east-1", "west-1")


def write_config(base: Path, cluster: EtcdCluster, sources: int, lease: float) -> Path:
    db = base / "one.sqlite"
    subprocess.run(["sqlite3", str(db), "create table t(x)"], check=True)
    lines = [
        "state_dir: state",
        f"encryption: {{key_file: {base / 'master.key'}}}",
        f"targets: {{local: {{kind: filesystem, path: {base / 'store'}}}}}",
        "daemon: {prune_schedule: '0 5 * * *', max_concurrent_jobs: 4}",
        f"fleet: {{coordination: [{', '.join(cluster.urls)}], group: bench, lease: {lease:g}s}}",
        "sources:",
    ]
    for i in range(sources):
        lines.append(
            f"  db{i:04d}: {{kind: sqlite, path: {db}, schedule: '{i % 60} 3 * * *', "
            "targets: [local]}"
        )
    config = base / "recoveryd.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def fleet_view(home: Path) -> dict[str, Any]:
    try:
        doc = json.loads((home / "state" / "daemon.json").read_text())
    except (OSError, ValueError):
        return {}
    return dict(doc.get("fleet") or {})


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise SystemExit(f"{what} did not happen within {timeout:g}s")


def sample(procs: dict[str, psutil.Process], seconds: float) -> dict[str, dict[str, float]]:
    cpu0 = {n: p.cpu_times() for n, p in procs.items()}
    rss: dict[str, int] = dict.fromkeys(procs, 0)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for n, p in procs.items():
            rss[n] = max(rss[n], p.memory_info().rss)
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    out = {}
    for n, p in procs.items():
        c1 = p.cpu_times()
        cpu = (c1.user - cpu0[n].user) + (c1.system - cpu0[n].system)
        out[n] = {
            "cpu_seconds": round(cpu, 2),
            "cpu_percent_of_one_core": round(100 * cpu / elapsed, 2),
            "rss_max_mib": round(rss[n] / 2**20, 1),
        }
    return out


def ownership_cost(sources: int) -> float:
    """Milliseconds for one ownership computation of `sources` jobs over 3 members."""
    specs = {
        f"backup:db{i:04d}": JobSpec(
            f"backup:db{i:04d}", "backup", "0 3 * * *", "k", source=f"db{i:04d}"
        )
        for i in range(sources)
    }
    members = [Member(n) for n in NAMES]
    t0 = time.perf_counter()
    for _ in range(10):
        assign(specs, members, lambda _spec: None)
    return round((time.perf_counter() - t0) / 10 * 1000, 2)


def run(sources: int, seconds: float, lease: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="recoveryd-fleet-bench-") as tmp:
        base = Path(tmp)
        cluster = EtcdCluster(base).start()
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            config = write_config(base, cluster, sources, lease)
            cli = [sys.executable, "-m", "recoveryd", "--config", str(config)]
            subprocess.run([*cli, "key", "generate"], check=True, capture_output=True, cwd=ROOT)
            subprocess.run([*cli, "init"], check=True, capture_output=True, cwd=ROOT)
            t0 = time.monotonic()
            for name in NAMES:
                home = base / name
                home.mkdir()
                (home / "recoveryd.yaml").symlink_to(config)
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "recoveryd", "--config", str(home / "recoveryd.yaml"),
                     "daemon", "--member", name],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                )  # fmt: skip
            jobs = sources + 1  # every backup, and the prune

            def settled(names: tuple[str, ...]) -> bool:
                views = [fleet_view(base / n) for n in names]
                owned = [j for v in views for j in v.get("owned_jobs") or []]
                return all(sorted(v.get("members") or []) == sorted(names) for v in views) and (
                    len(owned) == jobs == len(set(owned))
                )

            startup = wait_for(lambda: settled(NAMES), 300, "the fleet settling")
            shares = {n: len(fleet_view(base / n).get("owned_jobs") or []) for n in NAMES}
            measured = sample({n: psutil.Process(p.pid) for n, p in procs.items()}, seconds)
            victim = max(shares, key=lambda n: shares[n])
            survivors = tuple(n for n in NAMES if n != victim)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            rebalance = wait_for(lambda: settled(survivors), 10 * lease, "the rebalance")
            after = {n: len(fleet_view(base / n).get("owned_jobs") or []) for n in survivors}
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs.values():
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
            cluster.stop()
    del t0
    return {
        "benchmark": "fleet",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "kernel": platform.release(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "sources": sources,
        "members": len(NAMES),
        "lease_s": lease,
        "refresh_interval_s": round(lease / 3, 2),
        "window_s": seconds,
        "startup_until_settled_s": round(startup, 1),
        "jobs_owned": shares,
        "per_daemon": measured,
        "killed": victim,
        "rebalance_s": round(rebalance, 1),
        "jobs_owned_after": after,
        "ownership_computation_ms": ownership_cost(sources),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sources", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--lease", type=float, default=10.0)
    args = ap.parse_args()
    result = run(args.sources, args.seconds, args.lease)
    out = ROOT / "bench" / "results" / f"fleet-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
