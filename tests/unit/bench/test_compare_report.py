"""bench/compare_report.py: ratios recoveryd ÷ peer per round, their medians, the goals and
the marked section of docs/PERFORMANCE.md, from a recorded result (no benchmark is run)."""

from __future__ import annotations

from typing import Any

from bench import compare_report


def _entry(wall: float, stored: int, restore: float, objects: int = 10) -> dict[str, Any]:
    return {
        "backup": {"wall_s": wall, "cpu_s": wall, "peak_rss_mib": 100.0, "store_cpu_s": 1.0,
                   "stored_bytes": stored, "objects": objects, "stream_bytes": 10**9},
        "restore": {"wall_s": restore, "peak_rss_mib": 90.0},
    }  # fmt: skip


def _result() -> dict[str, Any]:
    rounds = [
        {"round": n, "loadavg_start": [2.0, 2.0, 2.0], "loadavg_end": [3.0, 2.0, 2.0],
         "results": {"recoveryd": _entry(w, 80, 10.0), "pipe_s3": _entry(10.0, 100, 10.0, 1)}}
        for n, w in ((1, 8.0), (2, 12.0), (3, 9.0))
    ]  # fmt: skip
    return {
        "date": "2026-12-03T15:00:00+00:00",
        "scale_gb": 0.5,
        "database_bytes": 512 * 1024**2,
        "cpus": 2,
        "tools": {
            "recoveryd": {"label": "recoveryd (S3)", "status": "ok"},
            "pipe_s3": {"label": "pipe (S3)", "status": "ok"},
            "restic": {"label": "restic", "status": "Debian package restic could not be installed"},
        },
        "rounds": rounds,
        "churn": {"recoveryd": {"append_update": {"new_pct": 3.0, "wall_s": 4.0}}},
    }


def test_ratios_are_medians_over_rounds_with_their_spread() -> None:
    """Each metric's ratio is taken per round, then the median, min and max over rounds."""
    ratios = compare_report.ratio_table(_result())
    assert ratios["pipe_s3"]["backup_wall"] == {"median": 0.9, "min": 0.8, "max": 1.2, "n": 3}
    assert ratios["pipe_s3"]["stored"]["median"] == 0.8
    assert ratios["restic"] == {}


def test_goals_say_by_how_much_they_are_met_or_missed() -> None:
    """Each goal carries its value, its limit and a verdict with the margin in percent."""
    result = compare_report.summarize(_result())
    by_name = {g["goal"]: g for g in result["summary"]["goals"]}
    wall = by_name["backup wall ≤ 1.0× the S3 pipe"]
    assert (wall["met"], wall["verdict"]) == (True, "met: 0.9× against ≤ 1× (10% under)")
    assert by_name["backup wall ≤ 1.0× pgBackRest"]["verdict"] == "not measured"
    assert by_name["churn backup ≤ 5% new bytes"]["met"] is True
    objects = by_name["objects per GB of dump ≤ 1/10 of before packs (≤ 80.5)"]
    assert (objects["value"], objects["met"]) == (10.0, True)


def test_the_section_is_rewritten_between_its_markers_and_names_missing_peers() -> None:
    """The generated section replaces the marked one (text around it kept), lists the load
    average of each round and the peers that could not be installed."""
    result = compare_report.summarize(_result())
    section = compare_report.markdown(result, "compare-2026-12-03.json")
    doc = f"# Perf\n\nbefore\n\n{compare_report.BEGIN}\nold\n{compare_report.END}\n\nafter\n"
    new = compare_report.rewrite_section(doc, section)
    assert new.startswith("# Perf\n\nbefore\n\n") and new.endswith("\n\nafter\n")
    assert "old" not in new and "round 1: 2.00 → 3.00" in new
    assert "- restic: Debian package restic could not be installed" in new
    assert compare_report.rewrite_section(new, section) == new


def test_the_section_is_appended_with_a_heading_when_there_are_no_markers() -> None:
    """A document without the markers gets the section at its end, under a heading."""
    result = compare_report.summarize(_result())
    new = compare_report.rewrite_section("# Perf\n", compare_report.markdown(result, "x.json"))
    assert new.startswith(f"# Perf\n\n{compare_report.HEADING}\n\n{compare_report.BEGIN}")


def test_the_section_puts_the_previous_runs_goals_beside_this_runs() -> None:
    """Given the run recorded before, each goal is one table row: this run's verdict, then
    the previous run's (named by file and date)."""
    before = _result()
    for rnd in before["rounds"]:
        rnd["results"]["recoveryd"]["backup"]["wall_s"] = 20.0
    before = compare_report.summarize(before)
    result = compare_report.summarize({**_result(), "date": "2026-12-03T16:00:00+00:00"})
    section = compare_report.markdown(result, "now.json", ("before.json", before))
    header = "| goal | this run | previous run (`before.json`, 2026-12-03T15:00:00+00:00) |"
    assert header in section
    assert (
        "| backup wall ≤ 1.0× the S3 pipe | met: 0.9× against ≤ 1× (10% under)"
        " | missed: 2× against ≤ 1× (100% over) |"
    ) in section


def test_the_section_states_how_recoveryd_ran_when_recorded() -> None:
    """A result that records recoveryd's settings (jobs, repository format, environment)
    has them stated in the section; one that does not, has no such line."""
    settings = {
        "jobs": "default (the cores, at most 4): 2",
        "repository": "format 2, packs of 16 MiB",
        "environment": {"MALLOC_MMAP_THRESHOLD_": "1048576"},
    }
    with_settings = compare_report.summarize({**_result(), "recoveryd": settings})
    section = compare_report.markdown(with_settings, "x.json")
    assert (
        "recoveryd ran with `jobs` default (the cores, at most 4): 2 (dump and"
        " restore processes), repository format 2, packs of 16 MiB; environment:"
        " `MALLOC_MMAP_THRESHOLD_=1048576`, as `systemd/recoveryd.service` sets it."
    ) in section
    assert "recoveryd ran with" not in compare_report.markdown(
        compare_report.summarize(_result()), "x.json"
    )


def _with_base_backup() -> dict[str, Any]:
    """The result above, with recoveryd's base backup and two physical peers in each round."""
    result = _result()
    result["tools"]["recoveryd_physical"] = {"label": "recoveryd base backup", "status": "ok"}
    result["tools"]["pgbackrest"] = {"label": "pgBackRest", "status": "ok"}
    result["tools"]["barman_cloud"] = {"label": "barman-cloud", "status": "ok"}
    for rnd in result["rounds"]:
        rnd["results"]["recoveryd_physical"] = _entry(6.0, 90, 5.0)
        rnd["results"]["pgbackrest"] = _entry(10.0, 100, 5.0)
        rnd["results"]["barman_cloud"] = _entry(8.0, 200, 4.0)
    return result


def test_the_base_backup_is_compared_with_the_physical_peers_only() -> None:
    """recoveryd's base backup is a tool of its own: the logical table does not compare the
    logical backup with it, and its own table holds only the peers that copy files."""
    result = compare_report.summarize(_with_base_backup())
    assert "recoveryd_physical" not in result["summary"]["ratios"]
    physical = result["summary"]["physical_ratios"]
    assert sorted(physical) == ["barman_cloud", "pgbackrest"]
    assert physical["barman_cloud"]["backup_wall"]["median"] == 0.75
    assert physical["pgbackrest"]["restore_wall"]["median"] == 1.0


def test_the_base_backup_goals_stand_beside_the_logical_ones() -> None:
    """With a base backup measured, its goals against pgBackRest and barman-cloud are added
    (the logical backup's goals stay), and its peak RSS counts in the RSS goal; without one,
    no such goal and no such table appear."""
    result = compare_report.summarize(_with_base_backup())
    by_name = {g["goal"]: g for g in result["summary"]["goals"]}
    barman = by_name["base backup wall ≤ 0.7× barman-cloud (both physical)"]
    assert barman["verdict"] == "missed: 0.75× against ≤ 0.7× (7% over)"
    assert by_name["base backup wall ≤ 1.0× pgBackRest (both physical)"]["met"] is True
    assert by_name["backup wall ≤ 0.7× barman-cloud"]["value"] == 1.125
    section = compare_report.markdown(result, "x.json")
    assert "| recoveryd base backup ÷ peer |" in section
    plain = compare_report.summarize(_result())
    assert "physical_ratios" not in plain["summary"]
    assert not any("base backup" in g["goal"] for g in plain["summary"]["goals"])
    assert "recoveryd base backup ÷ peer" not in compare_report.markdown(plain, "x.json")
