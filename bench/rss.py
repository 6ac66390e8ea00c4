"""Bench: recoveryd's peak RSS at 1 GB and at 10 GB (goal: ≤ 256 MiB, flat with the size).

The registry of bench/compare.py at `--scale 1` (generated once, then cached), on a real
PostgreSQL 15 and the comparison's Ceph RGW. At each size, recoveryd's logical backup to S3
and its restore into a new database, then its base backup (`mode: physical`) and the
restore into an empty directory; for each: peak RSS of the process tree (recoveryd and the
`pg_dump` / `pg_restore` / `pg_basebackup` processes it starts), wall time, CPU, stored
bytes. The large size is the same database grown by copying its rows under new ids, dates
and phone numbers (generating 10 GB row by row takes hours on two cores; what memory
depends on is the stream's length, not its entropy — the stored bytes, reported, show that
deduplication did not collapse the copies). Writes bench/results/rss-scale-<date>.json.

    .venv/bin/python bench/rss.py [--to 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from bench import compare, datagen, peers  # noqa: E402
from bench.measure import Servers  # noqa: E402
from tests.fixtures.pgarchive import setup_archive  # noqa: E402

GB = 1024**3
RSS_LIMIT_MIB = 256.0
# each table's copy: new ids (citizen ids shifted by k × the base's largest id), dates
# moved by k days, phone numbers by k (so no row of a copy equals its original's)
_COPIES = (
    "INSERT INTO citizen SELECT id + %(shift)s, national_id, family_name, given_name, sex,"
    " birth_date + %(k)s, registered_at + %(k)s * interval '1 day',"
    " CASE WHEN phone IS NULL THEN NULL ELSE"
    "  lpad(((phone::bigint + %(k)s) %% 100000000000)::text, 11, '0') END,"
    " notes, version FROM citizen WHERE id <= %(base)s",
    "INSERT INTO address SELECT citizen_id + %(shift)s, province, city, street, house_no,"
    " postcode, valid_from + %(k)s FROM address WHERE citizen_id <= %(base)s",
    "INSERT INTO registry_event (citizen_id, kind, happened_at, detail)"
    " SELECT citizen_id + %(shift)s, kind, happened_at + %(k)s * interval '1 day', detail"
    " FROM registry_event WHERE citizen_id <= %(base)s",
)


def grow_by_copies(dsn: str, size_bytes: int) -> int:
    """Append copies of the original citizens (and their addresses and events) until the
    database is at least `size_bytes`; returns the number of copies made."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        base = int(conn.execute("SELECT max(id) FROM citizen").fetchone()[0])  # type: ignore[index]
        k = 0
        while datagen.db_size(dsn) < size_bytes:
            k += 1
            for sql in _COPIES:
                conn.execute(sql.encode(), {"shift": k * base, "k": k, "base": base})  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE")
    return k


def _one_size(
    label: str, tools: list[peers.Tool], s3: compare.S3Server, a: compare.Archive,
    servers: Servers, ceph: compare.CephCluster,
) -> dict[str, Any]:  # fmt: skip
    """Backup and restore with each tool at the database's current size."""
    out: dict[str, Any] = {"database_bytes": datagen.db_size(a.dsn(a.port, "registry"))}
    for tool in tools:
        bucket = f"rss-{tool.name.replace('_', '-')}-{label}-{os.getpid()}"
        s3.client().create_bucket(Bucket=bucket)
        tool.prepare(bucket, len(out))
        got = {"backup": compare.backup_measured(tool, s3, servers, "first")}
        got["restore"] = compare.restore_measured(tool, a, servers, f"{tool.name}_{label}")
        out[tool.name] = got
        print(f"{label} {tool.name}: {json.dumps(got)}", flush=True)
        compare.empty_bucket(s3, bucket)
        ceph.collect_garbage()
    return out


def _peaks(sizes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Largest peak RSS at each size, and the verdict of the goal."""
    peak = {
        label: max(
            entry[phase]["peak_rss_mib"]
            for name, entry in got.items()
            if name != "database_bytes"
            for phase in ("backup", "restore")
        )
        for label, got in sizes.items()
    }
    worst = max(peak.values())
    met = worst <= RSS_LIMIT_MIB
    word, how = ("met", "under") if met else ("missed", "over")
    off = abs(worst - RSS_LIMIT_MIB) / RSS_LIMIT_MIB * 100
    return {
        "peak_rss_mib": peak,
        "verdict": f"{word}: largest peak {worst:g} MiB against ≤ {RSS_LIMIT_MIB:g} MiB"
        f" ({off:.0f}% {how})",
    }


def run(to_gb: float) -> dict[str, Any]:
    peers.install()
    work = Path(tempfile.mkdtemp(prefix="recoveryd-bench-rss-"))
    work.chmod(0o755)
    a = None
    try:
        with compare.ceph_store(work) as (ceph, store_pids):
            s3 = ceph.handle()
            a = setup_archive(work / "pg", settings="archive_command = '/bin/true'\n")
            made = compare.registry(a, 1.0)
            servers = Servers(database=(compare.postmaster_pid(a),), store=store_pids)
            bench = compare.bench_env(work, a, s3, None)
            tools: list[peers.Tool] = [
                peers.Recoveryd("recoveryd", "recoveryd (S3)", "logical", bench),
                peers.RecoverydPhysical("recoveryd_physical", "base backup", "physical", bench),
            ]
            sizes = {"1gb": _one_size("1gb", tools, s3, a, servers, ceph)}
            copies = grow_by_copies(a.dsn(a.port, "registry"), int(to_gb * GB))
            label = f"{to_gb:g}gb"
            sizes[label] = _one_size(label, tools, s3, a, servers, ceph)
            return {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "store": "Ceph RGW 16 (memstore) on loopback",
                "registry": made,
                "grown_by_copies": copies,
                "recoveryd": peers.recoveryd_settings(None),
                "sizes": sizes,
                "summary": _peaks(sizes),
                "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            }
    finally:
        if a is not None:
            a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--to", type=float, default=10.0, help="the large size in GB (default 10)")
    args = ap.parse_args(argv)
    result = run(args.to)
    out = compare.result_path(result["date"], "rss-scale")
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["summary"], ensure_ascii=False))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
