"""Bench: recoveryd's own CPU per GB of dump stream, backup and restore, by code tree.

A dump file (the bench registry's `pg_dump --format=custom --compress=0` stream, made
once with `--make-dump` from bench/datagen.py into the test suite's PostgreSQL and kept
under bench/.cache) is read by `cat` through the ProcessStream a dump tool's output goes
through, into a new repository (chunker, zstd, keyed ids, AES-256-GCM, 16 MiB packs) on
a filesystem target or on Ceph RGW from the test fixtures (plain http: every payload is
hashed for the signature). The snapshot is then restored through `feed` into
`sha256sum` (checked against the dump's digest), as a restore feeds `pg_restore`.

Each run is a child process with the allocator settings of systemd/recoveryd.service;
it reports its own CPU (user + system, every thread) for the backup and for the
restore, apart from its children's (`cat`, `sha256sum`). `--tree NAME=SRC` runs the code
of another checkout (its `src/` first on the import path), so the code before a change
and after it run interleaved on the same file, `--rounds` times; the best CPU of each
(tree, store) is reported, with the load average after each run. Writes
bench/results/cpu-<date>.json (or `--out`).

    .venv/bin/python bench/cpu.py --make-dump [--scale 0.1]
    .venv/bin/python bench/cpu.py --levels -1,1,2,3 [--dump FILE]   # zstd levels alone
    .venv/bin/python bench/cpu.py --tree base=/path/to/base/src --tree new=src \
        [--stores filesystem,ceph] [--rounds 3] [--dump FILE]
"""

from __future__ import annotations

import argparse
import hashlib
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
CACHE = ROOT / "bench" / ".cache"
MALLOC = {"MALLOC_ARENA_MAX": "1"}  # as systemd/recoveryd.service
GB = 1e9


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def child(job: dict[str, Any]) -> dict[str, Any]:
    """One backup and one restore in this process (the code on sys.path): what it cost."""
    from recoveryd.repo import MasterKey, Repository, SnapshotMeta, write_snapshot
    from recoveryd.sources.base import SourceInfo
    from recoveryd.sources.local import LocalRunner
    from recoveryd.sources.procstream import ProcessStream
    from recoveryd.sources.streamio import feed
    from recoveryd.stores.base import ObjectStore
    from recoveryd.stores.filesystem import FilesystemStore
    from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store

    where = job["where"]
    store: ObjectStore
    if where["kind"] == "filesystem":
        store = FilesystemStore(Path(where["path"]), "bench")
    else:
        settings = S3Settings(
            bucket=where["bucket"],
            endpoint_url=where["endpoint_url"],
            region=where["region"],
            credentials=S3Credentials(where["access_key"], where["secret_key"]),
        )
        store = S3Store("bench", settings)
    repo = Repository.init(store, MasterKey(os.urandom(32), "bench"))
    runner = LocalRunner()
    info = SourceInfo("postgresql", "pg_dump-custom")
    c0, k0, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = runner.start(["cat", job["dump"]])
    stream = ProcessStream(source="bench", tool="cat", proc=proc, info=info)
    snap = write_snapshot(stream, [repo], SnapshotMeta(source="bench"))[0]
    c1, k1, t1 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = Path(job["work"]) / "restored.sha256"
    sink = runner.start(["sh", "-c", f"exec sha256sum > {out}"], stdin=True)
    status = feed(sink, repo.restore_stream(snap.id))
    c2, k2, t2 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    digest = out.read_text().split()[0]
    if status != 0 or digest != job["digest"]:
        raise SystemExit(f"restore differs from the dump (status {status})")
    return {
        "backup_cpu_s": round(c1 - c0, 3),
        "backup_children_cpu_s": round(k1 - k0, 3),
        "backup_wall_s": round(t1 - t0, 3),
        "restore_cpu_s": round(c2 - c1, 3),
        "restore_children_cpu_s": round(k2 - k1, 3),
        "restore_wall_s": round(t2 - t1, 3),
        "stored_bytes": snap.stored_size,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def levels(dump: Path, which: list[int], rounds: int) -> dict[str, Any]:
    """zstd CPU per GB and ratio at each level, on the dump's chunks as the chunker cuts
    them (one thread; best of `rounds`), and zstd's decompression CPU per GB of each."""
    import zstandard

    from recoveryd.repo import chunker

    with dump.open("rb") as fh:
        chunks = list(chunker.chunks(fh))
    size = sum(len(c) for c in chunks)
    out: dict[str, Any] = {}
    for level in which:
        zc, zd = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()
        best_c = best_d = float("inf")
        stored = 0
        for _ in range(rounds):
            c0 = time.process_time()
            frames = [zc.compress(c) for c in chunks]
            c1 = time.process_time()
            for f in frames:
                zd.decompress(f)
            c2 = time.process_time()
            best_c, best_d = min(best_c, c1 - c0), min(best_d, c2 - c1)
            stored = sum(len(f) for f in frames)
        out[str(level)] = {
            "compress_cpu_s_per_gb": round(best_c / (size / GB), 2),
            "decompress_cpu_s_per_gb": round(best_d / (size / GB), 2),
            "ratio": round(size / stored, 3),
        }
    return out


def make_dump(scale: float) -> Path:
    """The registry at `scale` GB (bench/datagen.py) in the test suite's PostgreSQL, dumped
    once to bench/.cache/registry-<scale>gb.dump."""
    sys.path.insert(0, str(ROOT))
    from bench import datagen
    from tests.fixtures.postgres import PG_BIN, _run_cluster  # the test suite's PostgreSQL

    path = CACHE / f"registry-{scale:g}gb.dump"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-cpu-pg-"))
    cluster = _run_cluster(root)
    try:
        server = next(cluster)
        server.create_database("registry", owner="postgres")
        dsn = server.admin_dsn("registry")
        datagen.grow_to(dsn, int(scale * 1024**3))
        part = path.with_suffix(".part")
        with part.open("wb") as fh:
            subprocess.run(
                [str(PG_BIN / "pg_dump"), "--format=custom", "--compress=0", "--dbname", dsn],
                stdout=fh, check=True,
            )  # fmt: skip
        part.rename(path)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
    return path


def _where(kind: str, work: Path, n: int, servers: Any) -> dict[str, Any]:
    if kind == "filesystem":
        return {"kind": kind, "path": str(work / f"fs-{n}")}
    srv = servers.get("ceph")
    return {
        "kind": kind,
        "bucket": srv.make_bucket(),
        "endpoint_url": srv.endpoint_url,
        "region": srv.region,
        "access_key": srv.access_key,
        "secret_key": srv.secret_key,
    }


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _run(tree: str, job: dict[str, Any], extra: dict[str, str]) -> dict[str, Any]:
    env = {**os.environ, **MALLOC, **extra, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return dict(json.loads(out.stdout.splitlines()[-1]))


def _best(runs: list[dict[str, Any]], size: int) -> dict[str, Any]:
    best: dict[str, Any] = {"runs": len(runs)}
    for key in ("backup_cpu_s", "restore_cpu_s", "backup_wall_s", "restore_wall_s"):
        value = min(r[key] for r in runs)
        best[key] = value
        best[key.replace("_s", "_s_per_gb")] = round(value / (size / GB), 2)
    best["stored_bytes"] = runs[0]["stored_bytes"]
    best["ratio"] = round(size / runs[0]["stored_bytes"], 3)
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-dump", action="store_true")
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--tree", action="append", default=[], help="NAME=SRC (repeatable)")
    ap.add_argument("--env", action="append", default=[], help="K=V for the children")
    ap.add_argument("--stores", default="filesystem")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--levels", help="zstd levels to compare on the dump, e.g. -1,1,2,3")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.make_dump:
        print(make_dump(args.scale))
        return 0
    dump = args.dump or CACHE / f"registry-{args.scale:g}gb.dump"
    if args.levels:
        result = levels(dump, [int(x) for x in args.levels.split(",")], args.rounds)
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps({"dump": dump.name, "levels": result}, indent=2))
        return 0
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(ROOT / "src")}
    trees = {name: str(Path(src).resolve()) for name, src in trees.items()}
    size, digest = dump.stat().st_size, _digest(dump)
    kinds = args.stores.split(",")
    extra = dict(e.split("=", 1) for e in args.env)
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    servers = None
    if kinds != ["filesystem"]:
        sys.path.insert(0, str(ROOT))
        from tests.fixtures.objectstores import ObjectStoreServers

        servers = ObjectStoreServers(work / "servers", ("ceph",))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        n = 0
        for r in range(args.rounds):
            order = list(trees.items())
            order = order[r % len(order) :] + order[: r % len(order)]  # rotate the order
            for kind in kinds:
                for name, src in order:
                    n += 1
                    job = {"where": _where(kind, work, n, servers), "dump": str(dump)}
                    job.update({"digest": digest, "work": str(work)})
                    row = _run(src, job, extra)
                    row["load_avg_1m"] = round(os.getloadavg()[0], 2)
                    print(json.dumps({"tree": name, "store": kind, **row}), flush=True)
                    runs.setdefault(name, {}).setdefault(kind, []).append(row)
    finally:
        if servers is not None:
            servers.close()
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dump": dump.name,
        "dump_bytes": size,
        "cores": os.cpu_count(),
        "environment": {**MALLOC, **extra},
        "trees": {name: {"src": src} for name, src in trees.items()},
        "best": {n: {k: _best(v, size) for k, v in by.items()} for n, by in runs.items()},
        "runs": runs,
    }
    path = args.out or ROOT / "bench" / "results" / f"cpu-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc["best"], indent=2))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
