"""What the idle daemon costs: CPU and memory with 100 scheduled sources.

Starts the real `recoveryd daemon` process on a configuration of N SQLite
sources (each with a daily backup schedule and a weekly verify, none due during
the measurement) into a filesystem store, with metrics enabled, waits until it
is ready, then samples its CPU time and resident memory for the measurement
window (default 60 s). A Prometheus scrape every 15 s is part of the load, as
in production. Targets: < 1 % of one core, < 100 MiB RSS.

    .venv/bin/python bench/daemon_idle.py [--sources 100] [--seconds 60]

Writes bench/results/daemon-idle-YYYY-MM-DD.json and prints it.
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
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CPU_TARGET_PERCENT = 1.0
RSS_TARGET_MIB = 100.0


def write_config(base: Path, sources: int) -> Path:
    lines = [
        f"state_dir: {base / 'state'}",
        f"encryption: {{key_file: {base / 'master.key'}}}",
        f"targets: {{local: {{kind: filesystem, path: {base / 'store'}}}}}",
        "metrics: {listen: '127.0.0.1:0'}",
        "daemon: {prune_schedule: '0 5 * * *', max_concurrent_jobs: 4}",
        "sources:",
    ]
    for i in range(sources):
        minute = i % 60
        lines.append(
            f"  db{i:03d}: {{kind: sqlite, path: {base / f'db{i:03d}.sqlite'}, "
            f"schedule: '{minute} 3 * * *', targets: [local], "
            f"verify: {{schedule: '{minute} 4 * * 0'}}}}"
        )
    config = base / "recoveryd.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def wait_ready(
    state: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with {proc.returncode}")
        try:
            doc = json.loads((state / "daemon.json").read_text())
            if doc.get("state") == "running" and doc.get("metrics"):
                return dict(doc)
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit("the daemon did not become ready in time")


def measure(sources: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="recoveryd-bench-") as tmp:
        base = Path(tmp)
        config = write_config(base, sources)
        cli = [sys.executable, "-m", "recoveryd", "--config", str(config)]
        subprocess.run([*cli, "key", "generate"], check=True, capture_output=True, cwd=ROOT)
        subprocess.run([*cli, "init"], check=True, capture_output=True, cwd=ROOT)
        started = time.monotonic()
        proc = subprocess.Popen(
            [*cli, "daemon"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        try:
            doc = wait_ready(base / "state", proc)
            startup = time.monotonic() - started
            jobs = len(doc.get("next_runs") or {})  # type: ignore[arg-type]
            p = psutil.Process(proc.pid)
            cpu0 = p.cpu_times()
            t0 = time.monotonic()
            rss: list[int] = []
            next_scrape = t0
            scrapes = 0
            while (now := time.monotonic()) - t0 < seconds:
                rss.append(p.memory_info().rss)
                if now >= next_scrape:
                    url = f"http://{doc['metrics']}/metrics"
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        resp.read()
                    scrapes += 1
                    next_scrape += 15.0
                time.sleep(1.0)
            cpu1 = p.cpu_times()
            elapsed = time.monotonic() - t0
            threads = p.num_threads()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    cpu_percent = 100.0 * cpu_s / elapsed
    rss_mib = max(rss) / (1024 * 1024)
    return {
        "benchmark": "daemon_idle",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "sources": sources,
        "scheduled_jobs": jobs,
        "window_s": round(elapsed, 1),
        "startup_s": round(startup, 2),
        "cpu_seconds": round(cpu_s, 3),
        "cpu_percent_of_one_core": round(cpu_percent, 3),
        "rss_max_mib": round(rss_mib, 1),
        "threads": threads,
        "metrics_scrapes": scrapes,
        "exit_code_on_sigterm": code,
        "targets": {"cpu_percent": CPU_TARGET_PERCENT, "rss_mib": RSS_TARGET_MIB},
        "met": cpu_percent < CPU_TARGET_PERCENT and rss_mib < RSS_TARGET_MIB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.sources, args.seconds)
    out = args.out or ROOT / "bench" / "results" / f"daemon-idle-{result['date'][:10]}.json"  # type: ignore[index]
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
