"""Bench: a recoveryd base backup (`mode: physical`) against pgBackRest's full backup.

The same PostgreSQL 15 database (a generated population registry, bench/datagen.py,
`--size-mb`), the same disk, interleaved rounds:

- `recoveryd backup` of a `mode: physical` source: `pg_basebackup` streamed into a
  filesystem repository (chunked, deduplicated, zstd, AES-256-GCM);
- `pgbackrest backup --type=full` into a posix repository (zstd, `process-max=2`,
  AES-256-CBC repository encryption), with `archive-check=n` (both tools' archives are
  left out of the timing: recoveryd's base backup carries its WAL itself).

After the rounds, 1% of the citizens are appended and 1% updated in one id range, and
each tool takes its cheapest next backup: recoveryd another base backup (unchanged
relation files deduplicate), pgBackRest an incremental one. Reported: wall seconds,
CPU seconds of the tool's process tree, bytes added to the repository, load average.
Writes bench/results/basebackup-<date>.json and prints it.

    .venv/bin/python bench/basebackup.py [--size-mb 500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import datagen  # noqa: E402
from tests.fixtures.pgarchive import Archive, setup_archive  # noqa: E402
from tests.fixtures.pgcluster import as_postgres  # noqa: E402

MiB = 1024**2


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _measured(argv: list[str], repo: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    stored = _size(repo)
    began = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "stored_mib": round((_size(repo) - stored) / MiB, 1),
        "loadavg": round(os.getloadavg()[0], 2),
    }


def _pgbackrest_config(a: Archive, repo: Path) -> Path:
    conf = a.root / "pgbackrest.conf"
    conf.write_text(
        "[global]\n"
        f"repo1-path={repo}\nrepo1-retention-full=99\n"
        "repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=bench-only-passphrase\n"
        "compress-type=zst\nprocess-max=2\nstart-fast=y\narchive-check=n\n"
        f"log-path={a.root}\nlock-path={a.root}/pgbackrest-lock\nlog-level-console=warn\n"
        "[registry]\n"
        f"pg1-path={a.data}\npg1-port={a.port}\npg1-socket-path={a.sockets}\n"
    )
    shutil.chown(conf, "postgres", "postgres")
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    subprocess.run(["bash", str(ROOT / "scripts" / "install-deb.sh"), "pgbackrest"], check=True)
    root = Path(tempfile.mkdtemp(prefix="recoveryd-bench-basebackup-"))
    a = None
    try:
        a = setup_archive(root)
        dsn = a.dsn(a.port)
        datagen.grow_to(dsn, args.size_mb * MiB)
        db_mib = round(datagen.db_size(dsn) / MiB, 1)
        brepo = root / "pgbackrest-repo"
        brepo.mkdir()
        shutil.chown(brepo, "postgres", "postgres")
        conf = _pgbackrest_config(a, brepo)
        pgbackrest = as_postgres("pgbackrest", f"--config={conf}", "--stanza=registry")
        subprocess.run([*pgbackrest, "stanza-create"], check=True, capture_output=True)
        recoveryd = [sys.executable, "-m", "recoveryd", "--config", str(a.config)]
        rounds: list[dict[str, Any]] = []
        for n in range(args.rounds):
            order = ["recoveryd", "pgbackrest"] if n % 2 == 0 else ["pgbackrest", "recoveryd"]
            row: dict[str, Any] = {"round": n + 1}
            for tool in order:
                if tool == "recoveryd":
                    row[tool] = _measured([*recoveryd, "backup", "registry"], a.store)
                else:
                    row[tool] = _measured([*pgbackrest, "--type=full", "backup"], brepo)
            row["wall_ratio"] = round(row["recoveryd"]["wall_s"] / row["pgbackrest"]["wall_s"], 2)
            rounds.append(row)
        datagen.append_and_update(dsn, 1)
        churn = {
            "recoveryd_base_backup": _measured([*recoveryd, "backup", "registry"], a.store),
            "pgbackrest_incremental": _measured([*pgbackrest, "--type=incr", "backup"], brepo),
        }
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "database_mib": db_mib,
            "cpus": os.cpu_count(),
            "rounds": rounds,
            "after_1pct_churn": churn,
        }
    finally:
        if a is not None:
            a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)
    out = ROOT / "bench" / "results" / f"basebackup-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
