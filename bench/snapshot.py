"""Bench: snapshot and restore throughput, peak RSS and deduplication (issue 2).

On a generated "population registry" (bench/datagen.py: names, ID numbers with
check digits, addresses, dates, free text) in a real PostgreSQL 15 on loopback,
at each size (default ≈1 GB and ≈4 GB of database):

- `recoveryd backup` and `recoveryd restore` (the real CLI, in a subprocess)
  into a filesystem target: seconds, MiB/s of dump stream, stored bytes, and
  the peak RSS of the recoveryd process (VmHWM, sampled from /proc);
- the raw pipe on the same disk: `pg_dump -Fc -Z0 | zstd -T2 -3 > file` (+ fsync),
  and back `zstd -dc file | pg_restore`.

At the first size, deduplication: second snapshot after 1% appended + 1%
updated in one contiguous id range (target: < 10% of the first snapshot's
stored bytes), third after 1% updated at random; the same for SQLite.
Writes bench/results/snapshot-<date>.json and prints it.

    .venv/bin/python bench/snapshot.py [--sizes-gb 1,4] [--no-dedup]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
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

from bench import datagen  # noqa: E402
from tests.fixtures.postgres import PG_BIN, _run_cluster  # noqa: E402

from recoveryd.repo import generate_master_key  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
GB = 1024**3
MiB = 1024**2


class PeakRss:
    """Samples VmHWM of a process (and keeps the last value seen) until it exits."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self._stop.is_set():
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                return
            self._stop.wait(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_kib / 1024, 1)


def run_measured(argv: list[str] | str) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the top process, stdout); raises on failure.

    A string is a shell pipeline (the raw-pipe baseline is one, on purpose)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        shell=isinstance(argv, str),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rss = PeakRss(proc.pid)
    out, err = proc.communicate()
    seconds = time.monotonic() - start
    peak = rss.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({proc.returncode}): {err[-2000:]}")
    return seconds, peak, out


def write_config(work: Path, port: int, admin_pw: str) -> Path:
    generate_master_key(work / "master.key")
    (work / "pg.pw").write_text(admin_pw + "\n")
    (work / "pg.pw").chmod(0o600)  # a secret file others can read is refused
    cfg = work / "recoveryd.yaml"
    cfg.write_text(
        f"""state_dir: {work}/state
encryption: {{key_file: {work}/master.key}}
targets:
  local: {{kind: filesystem, path: {work}/store}}
sources:
  population:
    kind: postgresql
    dsn: "host=127.0.0.1 port={port} dbname=population user=postgres"
    password_file: {work}/pg.pw
    targets: [local]
  cache:
    kind: sqlite
    path: {work}/cache.db
    targets: [local]
"""
    )
    run_measured([PY, "-m", "recoveryd", "--config", str(cfg), "init"])
    return cfg


def recoveryd(cfg: Path, *args: str) -> tuple[float, float, dict[str, Any]]:
    seconds, peak, out = run_measured(
        [PY, "-m", "recoveryd", "--config", str(cfg), "--json", *args]
    )
    return seconds, peak, json.loads(out) if out.strip() else {}


def backup(cfg: Path, source: str) -> dict[str, Any]:
    seconds, peak, doc = recoveryd(cfg, "backup", source)
    snap = doc["snapshots"][0]
    return {
        "id": snap["id"],
        "seconds": round(seconds, 1),
        "stream_bytes": snap["size"],
        "stored_bytes": snap["stored_size"],
        "mib_per_s": round(snap["size"] / MiB / seconds, 1),
        "peak_rss_mib": peak,
    }


def bench_size(cfg: Path, work: Path, server: Any, size_gb: float) -> dict[str, Any]:
    dsn = server.admin_dsn("population")
    t = time.monotonic()
    rows = datagen.grow_to(dsn, int(size_gb * GB))
    result: dict[str, Any] = {
        "target_gb": size_gb,
        "citizens": rows,
        "db_bytes": datagen.db_size(dsn),
        "generate_seconds": round(time.monotonic() - t, 1),
    }
    snap = backup(cfg, "population")
    result["recoveryd_backup"] = snap
    dest_db = f"restore_{int(size_gb * 10)}"
    dest = f"host=127.0.0.1 port={server.port} dbname={dest_db} user=postgres password={server.admin_password}"  # noqa: E501
    seconds, peak, _ = recoveryd(cfg, "restore", snap["id"], "--to", dest)
    result["recoveryd_restore"] = {
        "seconds": round(seconds, 1),
        "mib_per_s": round(snap["stream_bytes"] / MiB / seconds, 1),
        "peak_rss_mib": peak,
    }
    server.drop_database(dest_db)
    env_pw = f"PGPASSWORD='{server.admin_password}'"
    raw = work / "store" / f"raw-{size_gb}.dump.zst"
    conn = f"-h 127.0.0.1 -p {server.port} -U postgres"
    seconds, _, _ = run_measured(
        f"{env_pw} {PG_BIN}/pg_dump {conn} -Fc -Z0 population"
        f" | zstd -q -T2 -3 -o {raw} && sync {raw}"
    )
    result["raw_pipe_backup"] = {
        "seconds": round(seconds, 1),
        "mib_per_s": round(snap["stream_bytes"] / MiB / seconds, 1),
        "stored_bytes": raw.stat().st_size,
    }
    server.create_database(dest_db)
    seconds, _, _ = run_measured(
        f"zstd -q -dc {raw} | {env_pw} {PG_BIN}/pg_restore {conn}"
        f" --no-owner --exit-on-error -d {dest_db}"
    )
    result["raw_pipe_restore"] = {
        "seconds": round(seconds, 1),
        "mib_per_s": round(snap["stream_bytes"] / MiB / seconds, 1),
    }
    server.drop_database(dest_db)
    raw.unlink()
    return result


def bench_dedup(cfg: Path, server: Any, first: dict[str, Any]) -> dict[str, Any]:
    dsn = server.admin_dsn("population")
    base = first["stored_bytes"]
    datagen.append_and_update(dsn, 1.0)
    second = backup(cfg, "population")
    datagen.update_random(dsn, 1.0)
    third = backup(cfg, "population")
    return {
        "first_stored_bytes": base,
        "append1_update1_contiguous": {
            "stored_bytes": second["stored_bytes"],
            "share_of_first": round(second["stored_bytes"] / base, 4),
            "target": "< 0.10",
        },
        "update1_random": {
            "stored_bytes": third["stored_bytes"],
            "share_of_first": round(third["stored_bytes"] / base, 4),
        },
    }


def bench_sqlite(cfg: Path, work: Path, rows: int) -> dict[str, Any]:
    db = work / "cache.db"
    datagen.sqlite_registry(db, rows)
    first = backup(cfg, "cache")
    datagen.sqlite_update(db, 1.0, contiguous=True)
    second = backup(cfg, "cache")
    datagen.sqlite_update(db, 1.0, contiguous=False)
    third = backup(cfg, "cache")
    base = first["stored_bytes"]
    return {
        "rows": rows,
        "db_bytes": db.stat().st_size,
        "first": first,
        "update1_contiguous_share": round(second["stored_bytes"] / base, 4),
        "update1_random_share": round(third["stored_bytes"] / base, 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-gb", default="1,4")
    ap.add_argument("--no-dedup", action="store_true")
    ap.add_argument("--sqlite-rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes_gb.split(",")]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_start": os.getloadavg()},
        "store": "filesystem target on local disk (fsync per object)",
        "sizes": [],
    }  # fmt: skip
    pg_root = Path(tempfile.mkdtemp(prefix="recoveryd-bench-pg-"))
    work = Path(tempfile.mkdtemp(prefix="recoveryd-bench-"))
    try:
        with contextlib.contextmanager(_run_cluster)(pg_root) as server:
            server.create_database("population")
            cfg = write_config(work, server.port, server.admin_password)
            for i, size in enumerate(sizes):
                entry = bench_size(cfg, work, server, size)
                if i == 0 and not args.no_dedup:
                    entry["dedup"] = bench_dedup(cfg, server, entry["recoveryd_backup"])
                results["sizes"].append(entry)
                print(json.dumps(entry, indent=2), flush=True)
        if not args.no_dedup:
            results["sqlite"] = bench_sqlite(cfg, work, args.sqlite_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    out = args.out or ROOT / "bench" / "results" / f"snapshot-{results['date'][:10]}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
