"""Bench: glibc's allocator settings and what they cost recoveryd.

The registry of bench/compare.py (`--scale`, cached) on a real PostgreSQL 15; each round
runs, for each setting in turn, a logical backup, a base backup (`mode: physical`, lz4)
and the restore of that base backup into an empty directory, each a `recoveryd` process
of its own, into a new filesystem repository on tmpfs (so that the store's own work does
not blur the process's). Per command: wall time, user and system CPU and minor page
faults of the process tree and its largest resident set (`wait4`'s resource usage of
the command, which counts the children it waited for: `pg_basebackup`, `pg_dump`).
Settings:

- `default`: glibc as it comes (per-thread arenas, a moving mmap threshold);
- `mmap-1mib`: `MALLOC_MMAP_THRESHOLD_=1048576`, what systemd/recoveryd.service set before;
- `arenas-2`: `MALLOC_ARENA_MAX=2`;
- `arenas-1`: `MALLOC_ARENA_MAX=1`, what it sets now.

Writes bench/results/malloc-<date>.json and prints a table.

    .venv/bin/python bench/malloc.py [--scale 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from bench import compare  # noqa: E402
from tests.fixtures.pgarchive import setup_archive  # noqa: E402

SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "mmap-1mib": {"MALLOC_MMAP_THRESHOLD_": "1048576"},
    "arenas-2": {"MALLOC_ARENA_MAX": "2"},
    "arenas-1": {"MALLOC_ARENA_MAX": "1"},
}
STEPS = ("logical backup", "base backup", "base backup restore")


def _run(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """One command: its process tree's wall time, CPU and minor faults, and its largest
    resident set (wait4's rusage: the process and the children it waited for)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    with tempfile.TemporaryFile() as errors:
        began = time.monotonic()
        proc = subprocess.Popen(
            argv, env={**inherited, **env}, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            err = errors.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(argv[-3:])} failed ({proc.returncode}): {err[-500:]}")
    return {
        "wall_s": round(wall, 2),
        "user_s": round(usage.ru_utime, 2),
        "sys_s": round(usage.ru_stime, 2),
        "minor_faults": usage.ru_minflt,
        "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def _config(work: Path, port: int, repo: Path) -> Path:
    dsn = f"host=127.0.0.1 port={port} user=postgres"
    cfg = {
        "state_dir": str(work / "state"),
        "encryption": {"key_file": str(work / "master.key")},
        "targets": {"fs": {"kind": "filesystem", "path": str(repo)}},
        "sources": {
            "logical": {"kind": "postgresql", "dsn": f"{dsn} dbname=registry", "targets": ["fs"]},
            "physical": {
                "kind": "postgresql",
                "mode": "physical",
                "compression": "lz4",
                "dsn": f"{dsn} dbname=postgres",
                "targets": ["fs"],
            },
        },
    }
    path = work / "recoveryd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def one(cli: list[str], repo: Path, restore_to: Path, env: dict[str, str]) -> dict[str, Any]:
    """The three steps into a new repository under `env`."""
    shutil.rmtree(repo, ignore_errors=True)
    subprocess.run([*cli, "init"], check=True, capture_output=True)
    out = {
        "logical backup": _run([*cli, "backup", "logical"], env),
        "base backup": _run([*cli, "backup", "physical"], env),
    }
    listed = subprocess.run([*cli, "snapshots", "--json"], check=True, capture_output=True)
    sid = next(s["id"] for s in json.loads(listed.stdout) if s["source"] == "physical")
    shutil.rmtree(restore_to, ignore_errors=True)
    out["base backup restore"] = _run([*cli, "restore", sid, "--to", str(restore_to)], env)
    shutil.rmtree(restore_to, ignore_errors=True)
    return out


def run(scale: float, rounds: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="recoveryd-bench-malloc-"))
    work.chmod(0o755)
    fast = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    scratch = Path(tempfile.mkdtemp(prefix="recoveryd-bench-malloc-", dir=fast))
    a = None
    try:
        a = setup_archive(work / "pg", settings="archive_command = '/bin/true'\n")
        made = compare.registry(a, scale)
        config = _config(work, a.port, scratch / "repo")
        cli = [sys.executable, "-m", "recoveryd", "--config", str(config)]
        subprocess.run([*cli, "key", "generate"], check=True, capture_output=True)
        runs: list[dict[str, Any]] = []
        for n in range(rounds):
            names = list(SETTINGS)
            names = names[n % len(names) :] + names[: n % len(names)]  # rotate the order
            for name in names:
                got = one(cli, scratch / "repo", scratch / "restored", SETTINGS[name])
                runs.append({"round": n + 1, "setting": name, **got})
                print(json.dumps(runs[-1]), flush=True)
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "registry": made,
            "store": "filesystem on tmpfs",
            "settings": SETTINGS,
            "runs": runs,
            "medians": _medians(runs),
        }
    finally:
        if a is not None:
            a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in SETTINGS:
        mine = [r for r in runs if r["setting"] == name]
        out[name] = {
            step: {
                k: round(statistics.median(r[step][k] for r in mine), 2)
                for k in ("wall_s", "user_s", "sys_s", "minor_faults", "max_rss_mib")
            }
            for step in STEPS
        }
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "| step | setting | wall s | user s | system s | minor faults | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in STEPS:
        for name, by_step in result["medians"].items():
            m = by_step[step]
            lines.append(
                f"| {step} | `{name}` | {m['wall_s']} | {m['user_s']} | {m['sys_s']} "
                f"| {int(m['minor_faults']):,} | {m['max_rss_mib']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    result = run(args.scale, args.rounds)
    out = compare.RESULTS / f"malloc-{result['date'][:10]}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
