"""bench/check.py: a comparison run fails on a ratio more than 10% worse than the recorded
run's, one sentence per regression (the benchmark itself is not run here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bench import check


def _run(**ratios: float) -> dict[str, Any]:
    """A comparison result with the given backup-wall ratios per peer (other metrics fixed)."""
    return {
        "tools": {
            "recoveryd": {"label": "recoveryd (S3)", "status": "ok"},
            "pgbackrest": {"label": "pgBackRest", "status": "ok"},
            "restic": {"label": "restic", "status": "ok"},
        },
        "summary": {
            "ratios": {
                peer: {
                    "backup_wall": {"median": value, "min": value, "max": value, "n": 3},
                    "stored": {"median": 0.8, "min": 0.8, "max": 0.8, "n": 3},
                }
                for peer, value in ratios.items()
            }
        },
    }


def test_a_ratio_within_ten_percent_is_no_regression() -> None:
    """A ratio 10% above the recorded one, or better than it, passes."""
    assert (
        check.regressions(_run(pgbackrest=1.0, restic=1.0), _run(pgbackrest=1.1, restic=0.5)) == []
    )


def test_each_ratio_more_than_ten_percent_worse_is_one_sentence() -> None:
    """Every ratio more than 10% above the recorded one is reported, naming the metric, the
    peer, both values and the growth."""
    found = check.regressions(_run(pgbackrest=1.0, restic=0.5), _run(pgbackrest=1.2, restic=0.6))
    assert found == [
        "backup wall time against pgBackRest: recoveryd ÷ peer is 1.20, 20% above the recorded"
        " 1.00 (allowed: 10%).",
        "backup wall time against restic: recoveryd ÷ peer is 0.60, 20% above the recorded"
        " 0.50 (allowed: 10%).",
    ]


def test_a_peer_missing_from_either_run_is_not_compared() -> None:
    """A peer measured in only one of the runs (e.g. not installed) is skipped, not an error."""
    assert check.regressions(_run(pgbackrest=1.0), _run(restic=9.0)) == []


def test_the_base_backups_ratios_are_checked_too() -> None:
    """The base backup's ratios against the physical peers regress like the logical ones,
    and the sentence says whose ratio it is."""
    before, after = _run(pgbackrest=1.0), _run(pgbackrest=1.0)
    before["summary"]["physical_ratios"] = _run(pgbackrest=0.5)["summary"]["ratios"]
    after["summary"]["physical_ratios"] = _run(pgbackrest=0.6)["summary"]["ratios"]
    assert check.regressions(before, after) == [
        "backup wall time against pgBackRest: recoveryd base backup ÷ peer is 0.60, 20% above"
        " the recorded 0.50 (allowed: 10%)."
    ]


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_main_exits_1_and_prints_the_regressions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command exits 1 and prints one line per regression."""
    base = _write(tmp_path / "base.json", _run(pgbackrest=1.0))
    cur = _write(tmp_path / "cur.json", _run(pgbackrest=1.5))
    code = check.main(["--current", str(cur), "--baseline", str(base)])
    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        "backup wall time against pgBackRest: recoveryd ÷ peer is 1.50, 50% above the recorded"
        " 1.00 (allowed: 10%)."
    ]


def test_main_exits_0_without_regression(tmp_path: Path) -> None:
    """The command exits 0 when no ratio regressed."""
    base = _write(tmp_path / "base.json", _run(pgbackrest=1.0))
    cur = _write(tmp_path / "cur.json", _run(pgbackrest=0.9))
    assert check.main(["--current", str(cur), "--baseline", str(base)]) == 0


def test_main_exits_2_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A result file that does not exist is one sentence on stderr and exit status 2."""
    code = check.main(["--current", str(tmp_path / "none.json"), "--baseline", str(tmp_path)])
    assert code == 2
    assert "none.json" in capsys.readouterr().err


def _commit(repo: Path, docs: dict[str, dict[str, Any]]) -> None:
    """A git repository whose HEAD holds `docs` under bench/results/."""
    results = repo / "bench" / "results"
    results.mkdir(parents=True)
    for name, doc in docs.items():
        _write(results / name, doc)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "runs"], check=True)


def test_the_recorded_run_is_the_committed_one_with_the_latest_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two runs recorded the same day (the later one named with a suffix, which sorts
    before the plain name), the reference is the one whose recorded date is later."""
    earlier = {**_run(pgbackrest=1.0), "date": "2026-12-03T15:13:27+00:00"}
    later = {**_run(pgbackrest=0.5), "date": "2026-12-03T16:17:11+00:00"}
    _commit(tmp_path, {"compare-2026-12-03.json": earlier, "compare-2026-12-03-1617.json": later})
    monkeypatch.setattr(check, "ROOT", tmp_path)
    name, doc = check.recorded_run()
    assert name == "bench/results/compare-2026-12-03-1617.json"
    assert doc["date"] == later["date"]
