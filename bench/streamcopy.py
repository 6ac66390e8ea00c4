"""Bench: Python cost per byte between a dump tool's pipe, the chunker and the compressor.

A local `cat` of a generated dump-like file (registry rows as text, see
bench/datagen.py's shapes) is read through the same ProcessStream a dump tool's
output goes through, cut by the repository's chunker and compressed per chunk,
as a backup does before sealing; each way is run `--rounds` times, interleaved:

- `read`: the reader handed to the chunker as `read(n)` only (each read makes a
  `bytes` object that the chunker then copies into its buffer);
- `readinto`: the chunker's buffer filled by the pipe directly (`readinto1`).

Reports wall and CPU seconds (this process) per way and MiB/s, without
compression by default (it costs far more than the copies, and hides them),
with `--compress` as a backup has it. Writes
bench/results/streamcopy-<date>.json and prints it.

    .venv/bin/python bench/streamcopy.py [--mib 512] [--rounds 3] [--compress]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recoveryd.repo import chunker  # noqa: E402
from recoveryd.sources.base import SourceInfo  # noqa: E402
from recoveryd.sources.local import LocalRunner  # noqa: E402
from recoveryd.sources.procstream import ProcessStream  # noqa: E402

MiB = 1024**2


class _ReadOnly:
    """Hides `readinto`: the chunker reads with `read(n)`, as it did before."""

    def __init__(self, inner: ProcessStream) -> None:
        self._inner = inner

    def read(self, size: int = -1, /) -> bytes:
        return self._inner.read(size)


def make_file(path: Path, mib: int) -> None:
    """Dump-like text rows (ids, names, numbers, dates), `mib` MiB."""
    rnd = random.Random(1)
    names = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu"]
    with path.open("w") as fh:
        i = 0
        while fh.tell() < mib * MiB:
            rows = [
                f"{i + k}\t{rnd.choice(names)} {rnd.randrange(10**6):06d}\t"
                f"{rnd.randrange(10**17, 10**18)}\t{rnd.randrange(1950, 2020)}-01-01\t"
                f"{rnd.randbytes(12).hex()}\n"
                for k in range(10000)
            ]
            fh.write("".join(rows))
            i += 10000


def one(path: Path, way: str, compress: bool) -> dict[str, Any]:
    proc = LocalRunner().start(["cat", str(path)])
    stream = ProcessStream(source="bench", tool="cat", proc=proc, info=SourceInfo("x", "raw"))
    reader = stream if way == "readinto" else _ReadOnly(stream)
    wall, cpu = time.monotonic(), time.process_time()
    total = stored = 0
    for data in chunker.chunks(reader, chunker.DEFAULT_PARAMS):
        total += len(data)
        stored += len(chunker.compress(data)) if compress else 0
    stream.finish()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    return {
        "way": way,
        "bytes": total,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "mib_per_s": round(total / MiB / wall, 1),
        "compressed_bytes": stored,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compress", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="recoveryd-bench-") as tmp:
        path = Path(tmp) / "dump.txt"
        make_file(path, args.mib)
        ways = ("read", "readinto")
        runs = [one(path, way, args.compress) for _ in range(args.rounds) for way in ways]
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg": os.getloadavg(),
        },
        "mib": args.mib,
        "compress": args.compress,
        "runs": runs,
        "best": {
            way: {
                "wall_seconds": min(r["wall_seconds"] for r in runs if r["way"] == way),
                "cpu_seconds": min(r["cpu_seconds"] for r in runs if r["way"] == way),
            }
            for way in ("read", "readinto")
        },
    }
    out = args.out or ROOT / "bench" / "results" / f"streamcopy-{result['date'][:10]}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["best"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
