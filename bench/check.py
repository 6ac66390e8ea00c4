"""Bench check: does a comparison run regress against the recorded one?

Compares the ratios recoveryd ÷ peer (medians over rounds, bench/compare.py) of a run with
those of the recorded run: of the bench/results/compare-*.json committed at HEAD, the one
whose recorded `date` is latest. A ratio more than 10% above the recorded one is a
regression; each is printed as one sentence and the exit status is 1. Exit 0 when none,
2 when a file is missing or unreadable.

    .venv/bin/python bench/check.py [--current FILE] [--baseline FILE] [--tolerance 0.10]

Without --current, the newest compare-*.json in bench/results (by modification time) is
checked; without --baseline, the recorded run is read from git.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# (summary key, whose ratios): the logical backup against every peer, the base backup
# against the tools that copy files
TABLES = (("ratios", "recoveryd"), ("physical_ratios", "recoveryd base backup"))
TITLES = {
    "backup_wall": "backup wall time",
    "backup_cpu": "backup CPU",
    "store_cpu": "store CPU during backup",
    "peak_rss": "peak RSS",
    "stored": "stored bytes",
    "objects": "objects stored",
    "restore_wall": "restore wall time",
}


def regressions(
    baseline: dict[str, Any], current: dict[str, Any], tolerance: float = 0.10
) -> list[str]:
    """One sentence per ratio of `current` more than `tolerance` above `baseline`'s.

    Ratios are recoveryd ÷ peer (lower is better); a peer or metric missing from either run
    is not compared."""
    found = []
    for table, who in TABLES:
        old = baseline.get("summary", {}).get(table, {})
        new = current.get("summary", {}).get(table, {})
        for peer, metrics in sorted(new.items()):
            for metric, stat in sorted(metrics.items()):
                before = old.get(peer, {}).get(metric)
                if not before or before["median"] <= 0:
                    continue
                growth = round(stat["median"] / before["median"] - 1, 6)
                if growth > tolerance:
                    label = current.get("tools", {}).get(peer, {}).get("label", peer)
                    found.append(
                        f"{TITLES.get(metric, metric)} against {label}: {who} ÷ peer is"
                        f" {stat['median']:.2f}, {growth:.0%} above the recorded"
                        f" {before['median']:.2f} (allowed: {tolerance:.0%})."
                    )
    return found


def _committed(path: str) -> dict[str, Any]:
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"HEAD:{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    doc: dict[str, Any] = json.loads(text)
    return doc


def recorded_run() -> tuple[str, dict[str, Any]]:
    """(path, document) of the newest compare-*.json committed at HEAD: the one whose
    recorded `date` is latest (several runs of one day keep a suffix after the date, so
    the file names alone do not order them)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", "HEAD", "bench/results/"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    runs = [p for p in listed if Path(p).name.startswith("compare-") and p.endswith(".json")]
    if not runs:
        raise FileNotFoundError("no bench/results/compare-*.json is committed yet")
    docs = {p: _committed(p) for p in runs}
    newest = max(runs, key=lambda p: (str(docs[p].get("date", "")), p))
    return newest, docs[newest]


def newest_run() -> Path:
    runs = sorted(RESULTS.glob("compare-*.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError("no bench/results/compare-*.json: run `make bench-compare`")
    return runs[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--current", type=Path)
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--tolerance", type=float, default=0.10)
    args = ap.parse_args(argv)
    try:
        current_path = args.current or newest_run()
        current = json.loads(current_path.read_text())
        if args.baseline is not None:
            base_name, baseline = str(args.baseline), json.loads(args.baseline.read_text())
        else:
            base_name, baseline = recorded_run()
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"bench check: {exc}", file=sys.stderr)
        return 2
    found = regressions(baseline, current, args.tolerance)
    for sentence in found:
        print(sentence)
    if found:
        return 1
    print(f"no ratio of {current_path.name} regressed by more than {args.tolerance:.0%}"
          f" against {base_name}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
