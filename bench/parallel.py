"""Bench: PostgreSQL dump and restore wall time with `jobs` 1, 2 and 4 (issue 13, item 3).

On a generated population registry (bench/datagen.py) in a real PostgreSQL 15 on
loopback, the real CLI (`recoveryd backup`, `recoveryd restore`, in a subprocess)
into a filesystem target, once per `jobs` value and round, the values
interleaved so that a load change on the machine spreads over all of them:
wall seconds of backup and restore, peak RSS, the load average before each
run. `jobs: 1` is one `pg_dump` stream; above 1 the snapshot is made of parts.
Writes bench/results/parallel-<date>.json and prints it.

`--foreign-keys` gives the registry two foreign keys (address and registry_event
→ citizen, with an index on registry_event.citizen_id) so that post-data has
keys to validate. `--baseline-src DIR` also restores each snapshot with the
recoveryd of another checkout (its `src`, first on PYTHONPATH), in the same
round, the order of the two alternating between rounds: restore wall time
before and after a change, under the same load.

    .venv/bin/python bench/parallel.py [--rows 400000] [--jobs 1,2,4] [--rounds 2]
        [--foreign-keys] [--baseline-src /path/to/other/checkout/src]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import datagen  # noqa: E402
from bench.snapshot import MiB, recoveryd, run_measured  # noqa: E402
from tests.fixtures.postgres import _run_cluster  # noqa: E402

from recoveryd.repo import generate_master_key  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
FOREIGN_KEYS = """
ALTER TABLE address ADD FOREIGN KEY (citizen_id) REFERENCES citizen (id);
ALTER TABLE registry_event ADD FOREIGN KEY (citizen_id) REFERENCES citizen (id);
CREATE INDEX IF NOT EXISTS registry_event_citizen ON registry_event (citizen_id);
"""


def write_config(work: Path, port: int, admin_pw: str, jobs: list[int]) -> Path:
    """One source per `jobs` value, all on the same database and target."""
    generate_master_key(work / "master.key")
    (work / "pg.pw").write_text(admin_pw + "\n")
    (work / "pg.pw").chmod(0o600)  # a secret file others can read is refused
    sources = "".join(
        f"""  population-j{j}:
    kind: postgresql
    dsn: "host=127.0.0.1 port={port} dbname=population user=postgres"
    password_file: {work}/pg.pw
    jobs: {j}
    targets: [local]
"""
        for j in jobs
    )
    cfg = work / "recoveryd.yaml"
    cfg.write_text(
        f"""state_dir: {work}/state
encryption: {{key_file: {work}/master.key}}
targets:
  local: {{kind: filesystem, path: {work}/store}}
sources:
{sources}"""
    )
    run_measured([PY, "-m", "recoveryd", "--config", str(cfg), "init"])
    return cfg


def restore(
    cfg: Path, server: Any, snap_id: str, dest_db: str, src: str | None
) -> tuple[float, float, float, int]:
    """(seconds, peak RSS MiB, load before, citizens restored) of one restore into a fresh
    database, with the recoveryd of `src` when given."""
    server.drop_database(dest_db)
    dest = (
        f"host=127.0.0.1 port={server.port} dbname={dest_db} user=postgres "
        f"password={server.admin_password}"
    )
    load = os.getloadavg()[0]
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = src
    try:
        seconds, peak, _ = recoveryd(cfg, "restore", snap_id, "--to", dest)
    finally:
        if src is not None:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    rows = int(server.psql(dest_db, "SELECT count(*) FROM citizen")[0][0])
    server.drop_database(dest_db)
    return seconds, peak, load, rows


def one_round(
    cfg: Path, server: Any, jobs: int, baseline: str | None, baseline_first: bool
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    seconds, peak, doc = recoveryd(cfg, "backup", f"population-j{jobs}")
    snap = doc["snapshots"][0]
    out: dict[str, Any] = {
        "jobs": jobs,
        "backup_seconds": round(seconds, 2),
        "backup_mib_per_s": round(snap["size"] / MiB / seconds, 1),
        "backup_peak_rss_mib": peak,
        "load_before_backup": round(load, 2),
        "stream_bytes": snap["size"],
    }
    order = [baseline, None] if baseline_first else [None, baseline]
    for src in order if baseline is not None else [None]:
        r_seconds, r_peak, r_load, rows = restore(cfg, server, snap["id"], f"restore_j{jobs}", src)
        key = "baseline_" if src is not None else ""
        out.update({
            f"{key}restore_seconds": round(r_seconds, 2),
            f"{key}restore_peak_rss_mib": r_peak,
            f"{key}load_before_restore": round(r_load, 2),
            f"{key}restored_citizens": rows,
        })  # fmt: skip
    return out


def best(runs: list[dict[str, Any]], jobs: int) -> dict[str, float]:
    """The fastest backup and restore (and baseline restore, when measured) of `jobs`."""
    mine = [r for r in runs if r["jobs"] == jobs]
    keys = {"backup": "backup_seconds", "restore": "restore_seconds"}
    if all("baseline_restore_seconds" in r for r in mine):
        keys["baseline_restore"] = "baseline_restore_seconds"
    return {name: min(r[key] for r in mine) for name, key in keys.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--jobs", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--foreign-keys", action="store_true")
    ap.add_argument("--baseline-src", type=Path)
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    pg_root = Path(tempfile.mkdtemp(prefix="recoveryd-bench-pg-"))
    work = Path(tempfile.mkdtemp(prefix="recoveryd-bench-"))
    try:
        with contextlib.contextmanager(_run_cluster)(pg_root) as server:
            server.create_database("population")
            dsn = server.admin_dsn("population")
            datagen.populate(dsn, args.rows)
            if args.foreign_keys:
                server.psql("population", FOREIGN_KEYS)
            # table sizes for the parts come from the catalog (as of the last ANALYZE)
            server.psql("population", "VACUUM ANALYZE")
            cfg = write_config(work, server.port, server.admin_password, jobs)
            base = str(args.baseline_src.resolve()) if args.baseline_src else None
            runs = [
                one_round(cfg, server, j, base, baseline_first=r % 2 == 0)
                for r in range(args.rounds)
                for j in jobs
            ]
            db_bytes = datagen.db_size(dsn)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "store": "filesystem target on local disk (fsync per object)",
        "citizens": args.rows,
        "foreign_keys": args.foreign_keys,
        "baseline_src": str(args.baseline_src) if args.baseline_src else None,
        "db_bytes": db_bytes,
        "runs": runs,
        "best_seconds": {f"jobs={j}": best(runs, j) for j in jobs},
    }
    out = args.out or ROOT / "bench" / "results" / f"parallel-{result['date'][:10]}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
