"""Bench: objects stored per GB, backup wall time and peak RSS, loose chunks against packs.

Writes the same dump-like stream (hex text from a seeded generator: compresses about
2:1, nothing to deduplicate) into a version 1 repository (one object per chunk) and a
version 2 one (16 MiB packs), on a filesystem target and on Ceph RGW from the test
fixtures (plain http, and https where no payload is hashed for the signature), with the
default chunker (1 MiB average). Each run is a child process, so its peak RSS (ru_maxrss)
is its own; the stream is generated as it is read and the restore is checked by hash.
Children run with MALLOC_MMAP_THRESHOLD_=1048576, as systemd/recoveryd.service set it
when these results were taken (`--malloc-threshold 0`: glibc's default, moving
threshold). Merges its runs into bench/results/packs-<date>.json under `runs` (or
`runs_default_malloc`).

    .venv/bin/python bench/packs.py [--mib 512] [--stores filesystem,ceph,ceph-https]
                                    [--malloc-threshold 1048576]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.objectstores import ObjectStoreServers  # noqa: E402

from recoveryd.repo import MasterKey, Repository, SnapshotMeta, write_snapshot  # noqa: E402
from recoveryd.repo.repoconfig import DEFAULT_PACK_SIZE  # noqa: E402
from recoveryd.sources.base import SourceInfo  # noqa: E402
from recoveryd.stores.base import ObjectStore  # noqa: E402
from recoveryd.stores.filesystem import FilesystemStore  # noqa: E402
from recoveryd.stores.s3 import S3Credentials, S3Settings, S3Store  # noqa: E402

MiB = 1024**2
BLOCK = MiB


class Stream:
    """A SnapshotReader of `size` bytes of seeded hex text, generated as it is read."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self._left = size
        self._buf = b""
        self.info = SourceInfo("directory", "raw", consistency={})

    def read(self, size: int = -1, /) -> bytes:
        while len(self._buf) < size and self._left > 0:
            n = min(BLOCK, self._left)
            self._buf += self._rng.randbytes(n // 2).hex().encode()
            self._left -= n
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def finish(self) -> None:
        return None

    def abort(self) -> None:
        return None


def _digest(reader: Any) -> str:
    h = hashlib.sha256()
    while block := reader.read(BLOCK):
        h.update(block)
    return h.hexdigest()


def _store(where: dict[str, Any]) -> ObjectStore:
    if where["kind"] == "filesystem":
        return FilesystemStore(Path(where["path"]), "bench")
    return S3Store(
        "bench",
        S3Settings(
            bucket=where["bucket"],
            endpoint_url=where["endpoint_url"],
            region=where["region"],
            credentials=S3Credentials(where["access_key"], where["secret_key"]),
            ca_bundle=where.get("ca_file"),
        ),
    )


def child(where: dict[str, Any], size: int, pack_size: int | None) -> dict[str, Any]:
    """One backup and restore in this process; what it measured."""
    store = _store(where)
    repo = Repository.init(store, MasterKey(os.urandom(32), "bench"), pack_size=pack_size)
    cpu0, t0 = time.process_time(), time.perf_counter()
    info = write_snapshot(Stream(size), [repo], SnapshotMeta(source="bench"))[0]
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t1 = time.perf_counter()
    assert _digest(repo.restore_stream(info.id)) == _digest(Stream(size))
    restore = time.perf_counter() - t1 - 0.0
    content = [o for o in store.list() if o.key.startswith(("data/", "packs/", "index/"))]
    return {
        "layout": "loose" if pack_size is None else f"packs-{pack_size // MiB}MiB",
        "objects": len(content),
        "objects_per_gb": round(len(content) / (size / 1e9), 1),
        "stored_mib": round(sum(o.size for o in content) / MiB, 1),
        "backup_wall_s": round(wall, 2),
        "backup_cpu_s": round(cpu, 2),
        "restore_wall_s": round(restore, 2),  # includes hashing the regenerated stream
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _where(kind: str, work: Path, n: int, servers: ObjectStoreServers | None) -> dict[str, Any]:
    if kind == "filesystem":
        return {"kind": kind, "path": str(work / f"fs-{n}")}
    assert servers is not None
    srv = servers.get("ceph")
    https = kind.endswith("https")
    return {
        "kind": kind,
        "bucket": srv.make_bucket(),
        "endpoint_url": srv.https_endpoint_url if https else srv.endpoint_url,
        "region": srv.region,
        "access_key": srv.access_key,
        "secret_key": srv.secret_key,
        "ca_file": str(srv.ca_file) if https else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--stores", default="filesystem,ceph,ceph-https")
    ap.add_argument("--malloc-threshold", type=int, default=1024 * 1024)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(child(job["where"], job["size"], job["pack_size"])))
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-packs-"))
    kinds = args.stores.split(",")
    servers = ObjectStoreServers(work / "servers", ("ceph",)) if kinds != ["filesystem"] else None
    results: list[dict[str, Any]] = []
    try:
        for n, (kind, pack_size) in enumerate(
            (k, p) for k in kinds for p in (None, DEFAULT_PACK_SIZE)
        ):
            job = {"where": _where(kind, work, n, servers), "size": args.mib * MiB}
            job["pack_size"] = pack_size
            env = dict(os.environ)
            if args.malloc_threshold:
                env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_threshold)
            out = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(job)],
                capture_output=True, text=True, check=True, env=env,
            )  # fmt: skip
            row = {"store": kind, **json.loads(out.stdout.splitlines()[-1])}
            row["load_avg_1m"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), flush=True)
            results.append(row)
    finally:
        if servers is not None:
            servers.close()
    path = ROOT / "bench" / "results" / f"packs-{datetime.now(UTC):%Y-%m-%d}.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.update({"stream_mib": args.mib, "cores": os.cpu_count()})
    doc["runs" if args.malloc_threshold else "runs_default_malloc"] = results
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
