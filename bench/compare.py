"""Bench: recoveryd side by side with pgBackRest, barman-cloud, restic and plain pipes.

One command (`make bench-compare`): generates the population registry (bench/datagen.py,
`--scale` GB of database; the data directory is cached under bench/.cache), starts a
real PostgreSQL 15 and the test suite's Ceph RGW (memstore, http and https on loopback),
installs the peers that are missing (Debian `pgbackrest` and `restic`, PyPI
`barman[cloud]` into bench/.peers/barman, not the project's environment), then runs
`--rounds` rounds with the tools interleaved (the order rotates each round):

- recoveryd to S3 (encrypted, deduplicated);
- `pg_dump -Fc -Z0 | zstd -T2 | upload` (boto3 multipart, bench/s3pipe.py);
- pgBackRest full backup (zst, process-max 2, aes-256-cbc, S3 over TLS with the test CA);
- barman-cloud-backup (lz4);
- restic (the dump on stdin, repository version 2: zstd, encrypted);
- `pg_dump -Fc -Z0 | zstd -T2` to a file (+ sync).

Each backup is followed by its restore (logical tools into a new database, physical ones
into an empty data directory). For each: wall time, CPU of the tool's process tree, CPU
of the database server and of the store meanwhile, peak RSS of the tree, stored bytes and
objects (each tool writes into its own fresh bucket per round). After the rounds, the last
round's repositories take churn backups: 1% appended + 1% updated in one id range, then 1%
updated at random (new bytes as % of the first backup). The 1-minute load average is
recorded around each round. Writes bench/results/compare-<date>.json and rewrites the
marked section of docs/PERFORMANCE.md (ratios recoveryd ÷ peer, goals).

    .venv/bin/python bench/compare.py [--scale 1] [--rounds 3] [--no-docs]
    .venv/bin/python bench/compare.py --docs-from bench/results/compare-DATE.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from bench import compare_report, datagen, peers  # noqa: E402
from bench.measure import CommandFailedError, Servers, measured  # noqa: E402
from tests.fixtures.objectstores import CephCluster, S3Server, make_test_ca  # noqa: E402
from tests.fixtures.pgarchive import Archive, setup_archive  # noqa: E402

from recoveryd.repo import generate_master_key  # noqa: E402

GB = 1024**3
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"


# --------------------------------------------------------------------------- servers


# memstore keeps every stored byte in memory; a round at 1 GB stores about 2 GB
MEMSTORE_BYTES = 12 * GB


@contextlib.contextmanager
def ceph_store(root: Path) -> Iterator[tuple[CephCluster, tuple[int, ...]]]:
    """The test suite's Ceph RGW; yields it and the pids of its daemons."""
    cluster = CephCluster(root / "ceph", make_test_ca(root / "tls"), memstore_bytes=MEMSTORE_BYTES)
    try:
        cluster.start()
        pids = tuple(p.popen.pid for p in cluster.procs if p.popen is not None)
        yield cluster, pids
    finally:
        cluster.stop()


def postmaster_pid(a: Archive) -> int:
    return int((a.data / "postmaster.pid").read_text().splitlines()[0])


def _cache_key(scale: float) -> str:
    digest = hashlib.sha256((ROOT / "bench" / "datagen.py").read_bytes()).hexdigest()[:12]
    return f"registry-{scale:g}gb-{digest}"


def registry(a: Archive, scale: float) -> dict[str, Any]:
    """Generate the registry at `scale` GB into database `registry`, or copy the cached data
    directory made by an earlier run at the same scale; returns what was made."""
    cached = CACHE / _cache_key(scale)
    began = time.monotonic()
    if cached.is_dir():
        a.pg_ctl(a.data, "-m", "fast", "-w", "stop")
        shutil.rmtree(a.data)
        subprocess.run(["cp", "-a", str(cached), str(a.data)], check=True)
        a.start(a.data, a.port)
        how = "cached"
    else:
        with psycopg.connect(a.dsn(a.port), autocommit=True) as conn:
            conn.execute("CREATE DATABASE registry")
        datagen.grow_to(a.dsn(a.port, "registry"), int(scale * GB))
        a.pg_ctl(a.data, "-m", "fast", "-w", "stop")
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = CACHE / f".{cached.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["cp", "-a", str(a.data), str(tmp)], check=True)
        tmp.rename(cached)
        a.start(a.data, a.port)
        how = "generated"
    dsn = a.dsn(a.port, "registry")
    with psycopg.connect(dsn) as conn:
        rows = int(conn.execute("SELECT count(*) FROM citizen").fetchone()[0])  # type: ignore[index]
    return {
        "how": how,
        "seconds": round(time.monotonic() - began, 1),
        "citizens": rows,
        "database_bytes": datagen.db_size(dsn),
    }


# --------------------------------------------------------------------------- rounds


def _bucket_usage(s3: S3Server, bucket: str) -> tuple[int, int]:
    size = count = 0
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            size += int(obj["Size"])
            count += 1
    return size, count


def empty_bucket(s3: S3Server, bucket: str) -> None:
    client = s3.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for key in keys:
            client.delete_object(Bucket=bucket, Key=key["Key"])
    client.delete_bucket(Bucket=bucket)


def _usage(tool: peers.Tool, s3: S3Server) -> tuple[int, int]:
    if isinstance(tool, peers.PipeFs):
        files = [p for p in (tool.bench.work / "fs" / tool.bucket).rglob("*") if p.is_file()]
        return sum(p.stat().st_size for p in files), len(files)
    return _bucket_usage(s3, tool.bucket)


def _sql(a: Archive, query: str) -> None:
    with psycopg.connect(a.dsn(a.port), autocommit=True) as conn:
        conn.execute(query.encode())


def restore_measured(tool: peers.Tool, a: Archive, servers: Servers, tag: str) -> dict[str, Any]:
    if tool.kind == "physical":
        dest_dir = tool.bench.work / f"restore-{tag}"
        dest_dir.mkdir(mode=0o700)
        shutil.chown(dest_dir, "postgres", "postgres")
        try:
            cmd, env = tool.restore(str(dest_dir))
            got, _ = measured(cmd, servers, env=env)
            got["restored_files"] = sum(1 for p in dest_dir.rglob("*") if p.is_file())
            return got
        finally:
            shutil.rmtree(dest_dir, ignore_errors=True)
    db = f"restore_{tag}"
    if tool.name != "recoveryd":  # recoveryd creates the database it restores into
        _sql(a, f"CREATE DATABASE {db}")
    try:
        cmd, env = tool.restore(db)
        got, _ = measured(cmd, servers, env=env)
        with psycopg.connect(a.dsn(a.port, db)) as conn:
            got["citizens"] = int(conn.execute("SELECT count(*) FROM citizen").fetchone()[0])  # type: ignore[index]
        return got
    finally:
        _sql(a, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def backup_measured(tool: peers.Tool, s3: S3Server, servers: Servers, step: str) -> dict[str, Any]:
    before, objs_before = _usage(tool, s3)
    cmd, env = tool.backup(step)
    got, out = measured(cmd, servers, env=env)
    tool.after_backup(out)
    after, objs_after = _usage(tool, s3)
    got["stored_bytes"], got["objects"] = after - before, objs_after - objs_before
    if "stream_bytes" in tool.state:
        got["stream_bytes"] = int(tool.state["stream_bytes"])
    return got


def one_round(
    n: int, tools: list[peers.Tool], s3: S3Server, a: Archive, servers: Servers
) -> dict[str, Any]:
    shift = (n - 1) % len(tools)
    order = tools[shift:] + tools[:shift]
    row: dict[str, Any] = {
        "round": n,
        "order": [t.name for t in order],
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "results": {},
    }
    for tool in order:
        bucket = f"cmp-{tool.name.replace('_', '-')}-{n}-{os.getpid()}"
        s3.client().create_bucket(Bucket=bucket)
        entry: dict[str, Any] = {}
        try:
            tool.prepare(bucket, n)
            entry["backup"] = backup_measured(tool, s3, servers, "first")
            entry["restore"] = restore_measured(tool, a, servers, f"{tool.name}_{n}")
        except (CommandFailedError, subprocess.CalledProcessError, OSError, KeyError) as exc:
            entry["error"] = _why(exc)
        row["results"][tool.name] = entry
        print(f"round {n} {tool.name}: {json.dumps(entry)}", flush=True)
    row["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return row


def _why(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        return f"{' '.join(map(str, exc.cmd))[:200]} exited {exc.returncode}: {str(err)[-1500:]}"
    return str(exc)[:2000]


def churn(
    tools: list[peers.Tool], rounds: list[dict[str, Any]], s3: S3Server, a: Archive,
    servers: Servers,
) -> dict[str, Any]:  # fmt: skip
    """The churn backups on the last round's repositories."""
    last = rounds[-1]["results"]
    ok = [t for t in tools if "error" not in last.get(t.name, {"error": ""})]
    out: dict[str, Any] = {t.name: {} for t in ok}
    dsn = a.dsn(a.port, "registry")
    steps = (
        ("append_update", lambda: datagen.append_and_update(dsn, 1.0)),
        ("random_update", lambda: datagen.update_random(dsn, 1.0)),
    )
    for step, change in steps:
        change()
        _sql(a, "CHECKPOINT")
        for tool in ok:
            first = last[tool.name]["backup"]["stored_bytes"]
            try:
                got = backup_measured(tool, s3, servers, step)
                got["new_pct"] = round(100 * got["stored_bytes"] / first, 2) if first else None
                out[tool.name][step] = got
            except (CommandFailedError, OSError, KeyError) as exc:
                out[tool.name][step] = {"error": _why(exc)}
            print(f"churn {step} {tool.name}: {json.dumps(out[tool.name][step])}", flush=True)
    return out


# --------------------------------------------------------------------------- main


def bench_env(work: Path, a: Archive, s3: S3Server, jobs: int | None) -> peers.Bench:
    creds = s3.write_credentials_file(work / "aws-credentials")
    shutil.chown(creds, "postgres", "postgres")
    generate_master_key(work / "master.key")
    return peers.Bench(
        work=work,
        pg_port=a.port,
        pg_data=a.data,
        pg_sockets=a.sockets,
        endpoint=s3.endpoint_url,
        https_endpoint=s3.https_endpoint_url,
        ca_file=s3.ca_file,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        credentials_file=creds,
        recoveryd_jobs=jobs,
    )


def run(scale: float, rounds: int, only: list[str] | None, jobs: int | None) -> dict[str, Any]:
    missing = peers.install()
    work = Path(tempfile.mkdtemp(prefix="recoveryd-bench-compare-"))
    work.chmod(0o755)
    a: Archive | None = None
    try:
        with ceph_store(work) as (ceph, store_pids):
            s3 = ceph.handle()
            a = setup_archive(work / "pg", settings="archive_command = '/bin/true'\n")
            made = registry(a, scale)
            servers = Servers(database=(postmaster_pid(a),), store=store_pids)
            bench = bench_env(work, a, s3, jobs)
            tools = [t for t in peers.make_tools(bench, missing) if not only or t.name in only]
            result: dict[str, Any] = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "scale_gb": scale,
                "registry": made,
                "database_bytes": made["database_bytes"],
                "cpus": os.cpu_count(),
                "store": "Ceph RGW 16 (memstore) on loopback; pgBackRest over https",
                "tools": _tool_status(bench, missing, tools),
                "recoveryd": peers.recoveryd_settings(jobs),
                "rounds": [],
            }
            for n in range(1, rounds + 1):
                result["rounds"].append(one_round(n, tools, s3, a, servers))
                if n < rounds:
                    _drop_round(tools, s3)
                    ceph.collect_garbage()
            result["churn"] = churn(tools, result["rounds"], s3, a, servers)
            result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
            return compare_report.summarize(result)
    finally:
        if a is not None:
            a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(work, ignore_errors=True)


def _tool_status(
    bench: peers.Bench, missing: dict[str, str | None], tools: list[peers.Tool]
) -> dict[str, dict[str, str]]:
    everyone = peers.make_tools(bench, {})
    chosen = {t.name for t in tools}
    out = {}
    for t in everyone:
        reason = missing.get(t.name)
        if reason is None and t.name not in chosen:
            continue
        out[t.name] = {"label": t.label, "status": reason or "ok"}
    return out


def _drop_round(tools: list[peers.Tool], s3: S3Server) -> None:
    """Free the store's memory (memstore) of a round that churn will not use."""
    for tool in tools:
        if isinstance(tool, peers.PipeFs):
            shutil.rmtree(tool.bench.work / "fs" / tool.bucket, ignore_errors=True)
        elif tool.bucket:
            with contextlib.suppress(Exception):
                empty_bucket(s3, tool.bucket)


def result_path(date: str, name: str = "compare") -> Path:
    """bench/results/NAME-DAY.json, or NAME-DAY-HHMM.json when the day already has a
    recorded run (an earlier run is never overwritten; bench/check.py orders runs by date)."""
    day, hhmm = date[:10], date[11:13] + date[14:16]
    out = RESULTS / f"{name}-{day}.json"
    return out if not out.exists() else RESULTS / f"{name}-{day}-{hhmm}.json"


def _previous_run(date: str) -> tuple[str, dict[str, Any]] | None:
    """(file name, result) of the recorded run with the latest date before `date`."""
    runs = []
    for path in RESULTS.glob("compare-*.json"):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_text())
            if str(doc.get("date", "")) < date:
                runs.append((str(doc["date"]), path.name, doc))
    if not runs:
        return None
    _, name, doc = max(runs, key=lambda r: (r[0], r[1]))
    return name, compare_report.summarize(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="database size in GB (default 1)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", help="comma-separated subset (recoveryd is always in)")
    ap.add_argument(
        "--jobs", type=int, help="recoveryd's `jobs` (default: none set, the source's default)"
    )
    ap.add_argument("--out", type=Path, help="result file (default bench/results/compare-DATE)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/PERFORMANCE.md")
    ap.add_argument(
        "--docs-from", type=Path, help="only rewrite docs/PERFORMANCE.md from this result file"
    )
    args = ap.parse_args(argv)
    if args.docs_from is not None:
        result, out = (
            compare_report.summarize(json.loads(args.docs_from.read_text())),
            args.docs_from,
        )
    else:
        only = ["recoveryd", *args.tools.split(",")] if args.tools else None
        result = run(args.scale, args.rounds, only, args.jobs)
        out = args.out or result_path(result["date"])
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"written to {out}")
    if not args.no_docs:
        section = compare_report.markdown(result, out.name, _previous_run(result["date"]))
        PERFORMANCE.write_text(compare_report.rewrite_section(PERFORMANCE.read_text(), section))
        print(f"rewrote the marked section of {PERFORMANCE}")
    for goal in result["summary"]["goals"]:
        print(f"{goal['goal']}: {goal['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
