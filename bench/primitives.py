"""Bench: what each step of a backup costs per GB, one at a time, on one core.

The stream is the registry of bench/compare.py (`--scale`, cached) as a base backup
carries it: its data directory as one tar, without `pg_wal`, held in memory. Each step of
recoveryd's pipeline runs alone over it, in this process, with the libraries and
parameters the product uses: content-defined chunking (FastCDC, the default chunker
parameters), chunk ids (HMAC-SHA256), compression (LZ4 frames as `compression: lz4`,
zstd at the product's level), encryption (AES-256-GCM of the compressed chunks). The sum
is the floor of CPU a base backup needs before any reading, copying, uploading or
storing; a tool that copies the files without deduplicating or encrypting pays only the
compression. Writes bench/results/primitives-<date>.json and prints CPU-s per GB.

    .venv/bin/python bench/primitives.py [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import compare  # noqa: E402
from pyfastcdc import FastCDC  # noqa: E402

from recoveryd.repo import chunker, crypto  # noqa: E402
from recoveryd.repo.crypto import CipherId, ObjectType  # noqa: E402

GB = 1024**3


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], Any], size: int, rounds: int = 2) -> float:
    """Best CPU-s per GB of `size` bytes over `rounds` runs (the first one warms up)."""
    best = float("inf")
    for _ in range(rounds):
        began = _cpu()
        fn()
        best = min(best, _cpu() - began)
    return round(best * GB / size, 3)


def stream(scale: float) -> bytes:
    cached = compare.CACHE / compare._cache_key(scale)
    if not cached.is_dir():
        raise SystemExit(f"no cached registry at {cached}: run bench/compare.py --scale {scale}")
    tar = ["tar", "cf", "-", "--exclude=./pg_wal", "-C", str(cached), "."]
    return subprocess.run(tar, check=True, capture_output=True).stdout


def measure(data: bytes) -> dict[str, Any]:
    view = memoryview(data)
    p = chunker.DEFAULT_PARAMS
    cdc = FastCDC(p.avg_size, min_size=p.min_size, max_size=p.max_size)
    spans = [(c.offset, c.length) for c in cdc.cut_buf(data)]
    chunks = [view[o : o + n] for o, n in spans]
    key, key_id, aes = os.urandom(32), os.urandom(8), CipherId.AES_256_GCM
    lz4 = [chunker.compress(c, "lz4") for c in chunks]

    def seal(payload: bytes) -> bytearray:
        return crypto.seal_parts(
            [payload], key=key, key_id=key_id, cid=aes, otype=ObjectType.CHUNK, name="c"
        )

    steps = {
        "chunking (FastCDC)": lambda: sum(1 for _ in cdc.cut_buf(data)),
        "chunk ids (HMAC-SHA256)": lambda: [crypto.chunk_id(key, c, aes) for c in chunks],
        "LZ4 frames": lambda: [chunker.compress(c, "lz4") for c in chunks],
        "zstd (the product's level)": lambda: [chunker.compress(c, "zstd") for c in chunks],
        "AES-256-GCM of the LZ4 chunks": lambda: [seal(c) for c in lz4],
    }
    per_gb = {name: _timed(fn, len(data)) for name, fn in steps.items()}
    dedup = per_gb["chunking (FastCDC)"] + per_gb["chunk ids (HMAC-SHA256)"]
    return {
        "stream_bytes": len(data),
        "chunks": len(spans),
        "lz4_ratio": round(sum(len(c) for c in lz4) / len(data), 3),
        "cpu_s_per_gb": per_gb,
        "lz4_pipeline_cpu_s_per_gb": round(
            dedup + per_gb["LZ4 frames"] + per_gb["AES-256-GCM of the LZ4 chunks"], 3
        ),
        "dedup_cpu_s_per_gb": round(dedup, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "scale_gb": args.scale,
        **measure(stream(args.scale)),
    }
    out = compare.RESULTS / f"primitives-{result['date'][:10]}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
