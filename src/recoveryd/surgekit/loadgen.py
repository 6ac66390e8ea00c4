"""A bounded, loopback-only HTTP load generator for the surge drill and the bench.

Open loop: request i is due at start + i/rate whatever the service does, so a
slow service shows as latency (measured from the due time, not the send time:
no coordinated omission). Bounded by `--duration` and `--max-requests`, and it
refuses any host that is not the loopback.

    python -m recoveryd.surgekit.loadgen run --url http://127.0.0.1:8080 \
        --rate 200 --duration 15 --out surge.json
    python -m recoveryd.surgekit.loadgen check surge.json --min-essential-success 0.99 --min-shed 1
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from recoveryd.governor.signals import percentile
from recoveryd.surgekit.demo_service import ESSENTIAL

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_DURATION = 300.0
MAX_REQUESTS = 200_000
# The mix of a health-code surge: mostly checkpoint scans, some payments, the rest browsing.
MIX: tuple[tuple[str, int], ...] = (
    ("/verify?code=3301", 45),
    ("/pay/verify?order=1", 10),
    ("/news", 20),
    ("/history", 15),
    ("/appointments", 10),
)


@dataclass(frozen=True)
class RouteStats:
    requests: int
    ok: int
    shed_503: int
    errors: int
    success: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Summary:
    url: str
    rate: float
    started_at: float  # epoch seconds of the first due request
    duration_s: float
    requests: int
    essential: RouteStats
    non_essential: RouteStats

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _stats(rows: Sequence[tuple[int, float]]) -> RouteStats:
    lat = sorted(r[1] for r in rows)
    ok = sum(1 for r in rows if r[0] == 200)
    return RouteStats(
        requests=len(rows),
        ok=ok,
        shed_503=sum(1 for r in rows if r[0] == 503),
        errors=sum(1 for r in rows if r[0] == 0),
        success=ok / len(rows) if rows else 1.0,
        p50_ms=round(percentile(lat, 50), 2) if lat else 0.0,
        p95_ms=round(percentile(lat, 95), 2) if lat else 0.0,
        p99_ms=round(percentile(lat, 99), 2) if lat else 0.0,
    )


def _schedule() -> itertools.cycle[str]:
    paths = [p for p, weight in MIX for _ in range(weight)]
    # interleave so every second of load has the same mix
    spread = sorted(paths, key=lambda p: paths.index(p) % 7)
    return itertools.cycle(spread)


def run_load(
    url: str,
    *,
    rate: float,
    duration: float,
    max_requests: int = MAX_REQUESTS,
    workers: int = 32,
    timeout: float = 5.0,
) -> Summary:
    """Send `rate` requests per second for `duration` seconds; return latency and success stats."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError(f"load generator URL {url!r}: only http:// on the loopback is allowed")
    duration = min(duration, MAX_DURATION)
    total = min(int(rate * duration), max_requests, MAX_REQUESTS)
    host, port = parts.hostname, parts.port or 80
    counter = itertools.count()
    paths = _schedule()
    lock = threading.Lock()
    results: list[tuple[str, int, float]] = []
    start = time.monotonic() + 0.05
    started_at = time.time() + 0.05

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        while True:
            with lock:
                i = next(counter)
                path = next(paths)
            if i >= total:
                break
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status = 0
            # Like browsers, retry once when a reused keep-alive connection turns out closed
            # (nginx closes idle ones on reload); a fresh connection failing is a failure.
            for attempt in (1, 2):
                try:
                    conn.request("GET", path, headers={"Connection": "keep-alive"})
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                    stale = isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError)
                    if attempt == 2 or not (stale or isinstance(exc, ConnectionResetError)):
                        break
            latency = (time.monotonic() - due) * 1000.0
            with lock:
                results.append((path, status, latency))
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    essential = [(s, lat) for p, s, lat in results if p.split("?")[0] in ESSENTIAL]
    other = [(s, lat) for p, s, lat in results if p.split("?")[0] not in ESSENTIAL]
    return Summary(
        url, rate, started_at, round(elapsed, 3), len(results), _stats(essential), _stats(other)
    )


def check(summary: dict[str, object], *, min_success: float, min_shed: int) -> list[str]:
    """Problems found in a summary written by `run` (empty when it meets the expectations)."""
    problems = []
    ess, non = summary.get("essential"), summary.get("non_essential")
    if not isinstance(ess, dict) or not isinstance(non, dict):
        return ["not a load generator summary"]
    if float(ess["success"]) < min_success:
        problems.append(f"essential-route success {ess['success']:.4f} below {min_success}")
    if int(non["shed_503"]) < min_shed:
        problems.append(
            f"{non['shed_503']} non-essential requests shed with 503; expected >= {min_shed}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--rate", type=float, required=True)
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--workers", type=int, default=32)
    r.add_argument("--out", type=Path)
    c = sub.add_parser("check")
    c.add_argument("summary", type=Path)
    c.add_argument("--min-essential-success", type=float, default=0.99)
    c.add_argument("--min-shed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        summary = run_load(args.url, rate=args.rate, duration=args.duration, workers=args.workers)
        text = json.dumps(summary.to_json(), indent=2)
        if args.out:
            args.out.write_text(text)
        sys.stdout.write(text + "\n")
        return 0
    data = json.loads(args.summary.read_text())
    problems = check(data, min_success=args.min_essential_success, min_shed=args.min_shed)
    for p in problems:
        sys.stderr.write(p + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
