"""Bench: S3 client reuse and merged ranged reads on restore, on Ceph RGW from the fixtures.

1. `open`: opening an S3 store, one HEAD, closing it, `--opens` times, with the process's
   shared client (`S3Store(...)`) against a client of its own each time
   (`S3Store(..., shared=False)`, what every open did before), over http and https.
2. `restore`: one backup of `--mib` MiB (seeded hex text, compresses about 2:1, default
   chunker, 16 MiB packs), then restores of it, one chunk per ranged GET
   (`ranges.NO_MERGE`, what restore did before) against merged ranges (the default),
   interleaved over `--rounds` rounds (the order alternates). Each restore is a child
   process: its peak RSS (VmHWM) is its own; GET requests are counted at the store
   API (every `get_range`/`get` is one GET), the output is checked by hash.

Writes bench/results/s3reuse-<date>.json.

    .venv/bin/python bench/s3reuse.py [--mib 256] [--rounds 3] [--opens 40]
                                      [--window-mib N]  (runs of N MiB of plaintext,
                                      not the default share of the read-ahead; results
                                      in s3reuse-<date>-window<N>.json)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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

from bench.packs import Stream  # noqa: E402
from tests.fixtures.objectstores import ObjectStoreServers, S3Server  # noqa: E402

from recoveryd.repo import MasterKey, Repository, SnapshotMeta, write_snapshot  # noqa: E402
from recoveryd.repo.ranges import NO_MERGE, Merge  # noqa: E402
from recoveryd.repo.restore import RestoreReader  # noqa: E402
from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store  # noqa: E402

MiB = 1024**2
KEY = bytes(range(32))


def _settings(where: dict[str, Any]) -> S3Settings:
    return S3Settings(
        bucket=where["bucket"],
        endpoint_url=where["endpoint_url"],
        region=where["region"],
        credentials=S3Credentials(where["access_key"], where["secret_key"]),
        ca_bundle=where.get("ca_file"),
    )


def _where(srv: S3Server, bucket: str, https: bool) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "endpoint_url": srv.https_endpoint_url if https else srv.endpoint_url,
        "region": srv.region,
        "access_key": srv.access_key,
        "secret_key": srv.secret_key,
        "ca_file": str(srv.ca_file) if https else None,
    }


class CountingStore(S3Store):
    """An S3Store that counts its GET requests."""

    gets = 0

    def get(self, key: str) -> bytes:
        self.gets += 1
        return super().get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self.gets += 1
        return super().get_range(key, offset, length)


def _peak_rss_mib() -> float:
    """This process's peak RSS since it started (VmHWM: ru_maxrss would count the peak of
    the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def restore_child(where: dict[str, Any], sid: str, merged: bool, window: int) -> dict[str, Any]:
    """One restore in this process; what it measured."""
    store = CountingStore("bench", _settings(where))
    repo = Repository.open(store, MasterKey(KEY, "bench"))
    repo.chunks.index()
    gets0, cpu0, t0 = store.gets, time.process_time(), time.perf_counter()
    digest = hashlib.sha256()
    merge = (Merge(max_plain=window) if window else None) if merged else NO_MERGE
    with RestoreReader(repo, repo.manifest(sid), merge=merge) as reader:
        while block := reader.read(MiB):
            digest.update(block)
    return {
        "merged": merged,
        "gets": store.gets - gets0,
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(time.process_time() - cpu0, 2),
        "peak_rss_mib": _peak_rss_mib(),
        "sha256": digest.hexdigest(),
    }


def bench_opens(srv: S3Server, bucket: str, opens: int) -> list[dict[str, Any]]:
    """Open, HEAD, close `opens` times: shared client against a new one each time."""
    rows = []
    for https in (False, True):
        settings = _settings(_where(srv, bucket, https))
        for shared in (False, True, False, True):
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(opens):
                store = S3Store("bench", settings, shared=shared)
                store.exists("config")
                store.close()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            rows.append(
                {
                    "endpoint": "https" if https else "http",
                    "shared": shared,
                    "opens": opens,
                    "ms_per_open": round(1000 * wall / opens, 2),
                    "cpu_ms_per_open": round(1000 * cpu / opens, 2),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_restores(
    srv: S3Server, bucket: str, mib: int, rounds: int, window: int
) -> dict[str, Any]:
    where = _where(srv, bucket, False)
    repo = Repository.init(S3Store("bench", _settings(where)), MasterKey(KEY, "bench"))
    t0 = time.perf_counter()
    info = write_snapshot(Stream(mib * MiB), [repo], SnapshotMeta(source="bench"))[0]
    backup = round(time.perf_counter() - t0, 2)
    expected = hashlib.sha256()
    stream = Stream(mib * MiB)
    while block := stream.read(MiB):
        expected.update(block)
    runs = []
    for r in range(rounds):
        for merged in (r % 2 == 0, r % 2 != 0):
            job = json.dumps({"where": where, "sid": info.id, "merged": merged, "window": window})
            out = subprocess.run(
                [sys.executable, __file__, "--child", job],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = {"round": r + 1, **json.loads(out.stdout.splitlines()[-1])}
            assert row.pop("sha256") == expected.hexdigest(), "restore differs"
            row["load_avg_1m"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), flush=True)
            runs.append(row)
    chunks = len(repo.manifest(info.id).chunks)
    return {"backup_wall_s": backup, "chunks": chunks, "runs": runs}


def _median(rows: list[dict[str, Any]], key: str, **match: Any) -> float:
    return statistics.median(r[key] for r in rows if all(r[k] == v for k, v in match.items()))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--opens", type=int, default=40)
    ap.add_argument("--window-mib", type=int, default=0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        job = json.loads(args.child)
        run = restore_child(job["where"], job["sid"], job["merged"], job["window"])
        print(json.dumps(run))
        return 0
    servers = ObjectStoreServers(Path(tempfile.mkdtemp(prefix="bench-s3reuse-")), ("ceph",))
    try:
        srv = servers.get("ceph")
        bucket = srv.make_bucket()
        opens = bench_opens(srv, bucket, args.opens) if args.opens else []
        window = args.window_mib * MiB
        restores = bench_restores(srv, srv.make_bucket(), args.mib, args.rounds, window)
    finally:
        servers.close()
    runs = restores["runs"]
    summary: dict[str, float] = {
        f"{endpoint}_{'shared' if shared else 'new_client'}_ms_per_open": _median(
            opens, "ms_per_open", endpoint=endpoint, shared=shared
        )
        for endpoint in ("http", "https")
        for shared in (False, True)
        if opens
    }
    for merged in (False, True):
        name = "merged" if merged else "one_per_chunk"
        for key in ("gets", "wall_s", "cpu_s", "peak_rss_mib"):
            summary[f"restore_{name}_{key}"] = _median(runs, key, merged=merged)
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "stream_mib": args.mib,
        "window_mib": args.window_mib or "default (readahead x max chunk / workers = 8)",
        "cores": os.cpu_count(),
        "opens": opens,
        "restore": restores,
        "summary": summary,
    }
    suffix = f"-window{args.window_mib}" if args.window_mib else ""
    path = ROOT / "bench" / "results" / f"s3reuse-{datetime.now(UTC):%Y-%m-%d}{suffix}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
