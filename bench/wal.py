"""Bench: does `wal-push` as `archive_command` keep up with PostgreSQL at full speed?

A real PostgreSQL 15 on loopback archives into a filesystem store through `recoveryd
wal-push`, run by the server as the `postgres` user once per segment, as in production:
synchronously (`sync`), and with `--spool` (`async`: a worker archives ready segments
four at a time and the call answers from its acknowledgements). `pgbench -i` (scale
`--scale`: a bulk load, the most WAL per second pgbench makes), then `pgbench`
(`--clients` clients, `--seconds` seconds) write as fast as this machine allows. Every
second the bench samples the size of `pg_wal`, the segments waiting
(`archive_status/*.ready`) and `pg_stat_archiver`. Reported per mode: WAL generated and
archived (segments/s), the backlog and `pg_wal` size at their peak and at the end, the
time to drain the backlog afterwards, and the load average. Writes
bench/results/wal-<date>.json and prints it.

    .venv/bin/python bench/wal.py [--modes sync,async] [--seconds 60] [--scale 50]
"""

from __future__ import annotations

import argparse
import json
import os
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

from tests.fixtures.pgarchive import Archive, setup_archive  # noqa: E402
from tests.fixtures.pgcluster import PG_BIN, as_postgres  # noqa: E402

MiB = 1024**2


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def _sample(a: Archive, samples: list[dict[str, Any]], stop: threading.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        ((archived, failed),) = a.sql(
            a.port, "select archived_count, failed_count from pg_stat_archiver"
        )
        ready = len(list((a.data / "pg_wal" / "archive_status").glob("*.ready")))
        samples.append(
            {
                "t": round(time.monotonic() - started, 2),
                "pg_wal_mib": round(_dir_size(a.data / "pg_wal") / MiB, 1),
                "ready": ready,
                "archived": archived,
                "failed": failed,
            }
        )
        stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scale", type=int, default=50)
    args = parser.parse_args(argv)
    results = {mode: run_mode(mode, args) for mode in args.modes.split(",")}
    out = ROOT / "bench" / "results" / f"wal-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    summary = {m: {k: v for k, v in r.items() if k != "samples"} for m, r in results.items()}
    print(json.dumps(summary, indent=2))
    print(f"written to {out}")
    return 0


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="recoveryd-bench-wal-"))
    a = None
    try:
        a = setup_archive(
            root,
            settings="max_wal_size = 4GB\ncheckpoint_timeout = 30min\n",
            spool=root / "spool" if mode == "async" else None,
        )
        pgbench = [str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres"]
        ((start_archived,),) = a.sql(a.port, "select archived_count from pg_stat_archiver")
        ((lsn0,),) = a.sql(a.port, "select pg_current_wal_lsn()")
        samples: list[dict[str, Any]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(a, samples, stop), daemon=True)
        sampler.start()
        load_before = os.getloadavg()
        began = time.monotonic()
        subprocess.run(  # the bulk load: the most WAL per second pgbench makes
            as_postgres(*pgbench, "-i", "-q", "-s", str(args.scale), "postgres"),
            check=True,
            capture_output=True,
        )
        loaded = time.monotonic() - began
        run = subprocess.run(
            as_postgres(
                *pgbench, "-c", str(args.clients), "-j", "2", "-T", str(args.seconds), "postgres"
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        ran = time.monotonic() - began
        ((lsn1,),) = a.sql(a.port, "select pg_current_wal_lsn()")
        ((generated_bytes,),) = a.sql(a.port, f"select pg_wal_lsn_diff('{lsn1}', '{lsn0}')")
        at_end = samples[-1] if samples else {}
        drain_started = time.monotonic()
        while len(list((a.data / "pg_wal" / "archive_status").glob("*.ready"))) > 0:
            if time.monotonic() - drain_started > 600:
                break
            time.sleep(0.5)
        drained = time.monotonic() - drain_started
        stop.set()
        sampler.join()
        ((end_archived, failed),) = a.sql(
            a.port, "select archived_count, failed_count from pg_stat_archiver"
        )
        tps = next((ln for ln in run.stdout.splitlines() if ln.startswith("tps")), "")
        segments = float(generated_bytes) / (16 * MiB)
        result = {
            "mode": mode,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "loadavg_before": load_before},
            "pgbench": {"clients": args.clients, "scale": args.scale, "seconds": args.seconds},
            "pgbench_tps": tps,
            "seconds_bulk_load": round(loaded, 1),
            "seconds_in_all": round(ran, 1),
            "wal_generated_mib": round(float(generated_bytes) / MiB, 1),
            "segments_generated_per_s": round(segments / ran, 2),
            "segments_archived_during_run": (
                at_end.get("archived", start_archived) - start_archived
            ),
            "segments_archived_per_s": round(
                (at_end.get("archived", start_archived) - start_archived) / ran, 2
            ),
            "backlog_ready_max": max((s["ready"] for s in samples), default=0),
            "backlog_ready_at_end": at_end.get("ready"),
            "pg_wal_mib_first": samples[0]["pg_wal_mib"] if samples else None,
            "pg_wal_mib_max": max((s["pg_wal_mib"] for s in samples), default=None),
            "pg_wal_mib_at_end": at_end.get("pg_wal_mib"),
            "seconds_to_drain_after_run": round(drained, 1),
            "archived_total": end_archived - start_archived,
            "archive_failures": failed,
            "loadavg_after": os.getloadavg(),
            "samples": samples,
        }
    finally:
        if a is not None:
            a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
