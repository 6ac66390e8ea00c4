"""The pure half of bench/compare.py: ratios, goals and the Markdown table, from a result.

`summarize(result)` adds `summary` = {"ratios": {peer: {metric: {median, min, max, n}}},
"goals": [...]} to a result document; `markdown(result)` renders the section of
docs/PERFORMANCE.md; `rewrite_section(text, section)` puts it between the markers.
A ratio is recoveryd ÷ peer in the same round: below 1 recoveryd is faster (or smaller).
recoveryd's logical backup is compared with every peer; its base backup (`mode: physical`),
when the run has it, also with the peers that copy the cluster's files (`physical_ratios`).
"""

from __future__ import annotations

import statistics
from typing import Any

BEGIN = "<!-- bench-compare:begin (written by `make bench-compare`; edits are lost) -->"
END = "<!-- bench-compare:end -->"
HEADING = "## Side by side: pgBackRest, barman-cloud, restic and plain pipes"

# metric name -> (phase, key in that phase's measurement, column title)
METRICS: dict[str, tuple[str, str, str]] = {
    "backup_wall": ("backup", "wall_s", "backup wall"),
    "backup_cpu": ("backup", "cpu_s", "backup CPU"),
    "store_cpu": ("backup", "store_cpu_s", "store CPU (backup)"),
    "peak_rss": ("backup", "peak_rss_mib", "peak RSS"),
    "stored": ("backup", "stored_bytes", "stored"),
    "objects": ("backup", "objects", "objects"),
    "restore_wall": ("restore", "wall_s", "restore wall"),
}
# Objects per GB of dump stream recoveryd stored before packs: 680 objects for 845 MB.
OBJECTS_PER_GB_BEFORE = 680 / 0.845
RSS_LIMIT_MIB = 256.0
NOT_ON_THE_STORE = frozenset({"pipe_fs"})
OURS = "recoveryd"
OURS_PHYSICAL = "recoveryd_physical"
PHYSICAL_PEERS = ("pgbackrest", "barman_cloud")


def _value(entry: dict[str, Any], metric: str) -> float | None:
    phase, key, _ = METRICS[metric]
    got = entry.get(phase, {}).get(key)
    return float(got) if isinstance(got, int | float) else None


def round_ratios(results: dict[str, Any], peer: str, us: str = OURS) -> dict[str, float]:
    """`us` ÷ `peer` for each metric both measured in one round (peer value > 0)."""
    ours, theirs = results.get(us, {}), results.get(peer, {})
    out: dict[str, float] = {}
    for metric in METRICS:
        if peer in NOT_ON_THE_STORE and metric in ("store_cpu", "objects"):
            continue  # the filesystem pipe does not use the store: its store CPU is idle noise
        a, b = _value(ours, metric), _value(theirs, metric)
        if a is not None and b is not None and b > 0:
            out[metric] = round(a / b, 3)
    return out


def ratio_table(
    result: dict[str, Any], us: str = OURS, peers: list[str] | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """{peer: {metric: {median, min, max, n}}} over the rounds, `us` ÷ peer (default:
    recoveryd's logical backup ÷ every other tool)."""
    if peers is None:
        peers = [t for t in result["tools"] if t not in (OURS, OURS_PHYSICAL)]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for peer in peers:
        per_metric: dict[str, list[float]] = {}
        for rnd in result["rounds"]:
            for metric, value in round_ratios(rnd["results"], peer, us).items():
                per_metric.setdefault(metric, []).append(value)
        table[peer] = {
            m: {
                "median": round(statistics.median(v), 3),
                "min": min(v),
                "max": max(v),
                "n": len(v),
            }
            for m, v in per_metric.items()
        }
    return table


def physical_ratio_table(result: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """recoveryd's base backup ÷ each physical peer; empty when the run has no base backup."""
    if OURS_PHYSICAL not in result["tools"]:
        return {}
    return ratio_table(result, OURS_PHYSICAL, [p for p in PHYSICAL_PEERS if p in result["tools"]])


def _ours(result: dict[str, Any], phase: str, key: str, us: str = OURS) -> list[float]:
    values = []
    for rnd in result["rounds"]:
        got = rnd["results"].get(us, {}).get(phase, {}).get(key)
        if isinstance(got, int | float):
            values.append(float(got))
    return values


def _goal(name: str, value: float | None, limit: float, unit: str = "×") -> dict[str, Any]:
    if value is None:
        return {"goal": name, "limit": limit, "value": None, "met": None, "verdict": "not measured"}
    met = value <= limit
    off = abs(value - limit) / limit * 100 if limit else 0.0
    word, how = ("met", "under") if met else ("missed", "over")
    verdict = f"{word}: {value:g}{unit} against ≤ {limit:g}{unit} ({off:.0f}% {how})"
    return {"goal": name, "limit": limit, "value": value, "met": met, "verdict": verdict}


def goals(
    result: dict[str, Any], ratios: dict[str, Any], physical: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """How far each goal of the comparison is met or missed, from this run's medians: the
    logical backup against every peer, and (when measured) the base backup against the
    physical peers."""

    def median_ratio(peer: str, metric: str, table: dict[str, Any] = ratios) -> float | None:
        got = table.get(peer, {}).get(metric)
        return float(got["median"]) if got else None

    like = physical or {}

    out = [
        _goal("backup wall ≤ 1.0× the S3 pipe", median_ratio("pipe_s3", "backup_wall"), 1.0),
        _goal("backup wall ≤ 1.0× pgBackRest", median_ratio("pgbackrest", "backup_wall"), 1.0),
        _goal("backup wall ≤ 0.7× barman-cloud", median_ratio("barman_cloud", "backup_wall"), 0.7),
        _goal("restore wall ≤ 1.0× the S3 pipe", median_ratio("pipe_s3", "restore_wall"), 1.0),
    ]
    if like:
        out += [
            _goal(
                "base backup wall ≤ 1.0× pgBackRest (both physical)",
                median_ratio("pgbackrest", "backup_wall", like),
                1.0,
            ),
            _goal(
                "base backup wall ≤ 0.7× barman-cloud (both physical)",
                median_ratio("barman_cloud", "backup_wall", like),
                0.7,
            ),
        ]
    churn = result.get("churn", {}).get("recoveryd", {}).get("append_update", {})
    pct = churn.get("new_pct")
    out.append(_goal("churn backup ≤ 5% new bytes", pct, 5.0, "%"))
    first = _ours(result, "backup", "wall_s")
    if first and isinstance(churn.get("wall_s"), int | float):
        share = round(float(churn["wall_s"]) / statistics.median(first), 2)
        out.append(_goal("churn backup faster than the first (wall ratio < 1)", share, 1.0))
    rss = [
        value
        for us in (OURS, OURS_PHYSICAL)
        for phase in ("backup", "restore")
        for value in _ours(result, phase, "peak_rss_mib", us)
    ]
    out.append(
        _goal("peak RSS ≤ 256 MiB (this scale only)", max(rss) if rss else None, 256, " MiB")
    )
    objects, stream = _ours(result, "backup", "objects"), _ours(result, "backup", "stream_bytes")
    per_gb = None
    if objects and stream and stream[0] > 0:
        per_gb = round(statistics.median(objects) / (statistics.median(stream) / 1e9), 1)
    out.append(
        _goal(
            "objects per GB of dump ≤ 1/10 of before packs (≤ 80.5)",
            per_gb,
            round(OBJECTS_PER_GB_BEFORE / 10, 1),
            "/GB",
        )
    )
    return out


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The result with its `summary` (ratios and goals) filled in."""
    ratios, physical = ratio_table(result), physical_ratio_table(result)
    result["summary"] = {"ratios": ratios, "goals": goals(result, ratios, physical)}
    if physical:
        result["summary"]["physical_ratios"] = physical
    return result


def _label(result: dict[str, Any], tool: str) -> str:
    """The tool's label, its pipes escaped for a Markdown table cell."""
    return str(result["tools"][tool]["label"]).replace("|", "\\|")


def _cell(stat: dict[str, float] | None) -> str:
    if not stat:
        return "—"
    return f"{stat['median']:.2f} ({stat['min']:.2f}–{stat['max']:.2f})"


def _medians(result: dict[str, Any], tool: str, phase: str, key: str) -> str:
    values = []
    for rnd in result["rounds"]:
        got = rnd["results"].get(tool, {}).get(phase, {}).get(key)
        if isinstance(got, int | float):
            values.append(float(got))
    if not values:
        return "—"
    med = statistics.median(values)
    if key == "stored_bytes":
        return f"{med / 1024**2:.1f} MiB"
    return f"{med:g}"


def _ratio_lines(result: dict[str, Any], key: str = "ratios", who: str = "recoveryd") -> list[str]:
    titles = [METRICS[m][2] for m in METRICS]
    lines = [f"| {who} ÷ peer | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    for peer, stats in result["summary"].get(key, {}).items():
        cells = " | ".join(_cell(stats.get(m)) for m in METRICS)
        lines.append(f"| {_label(result, peer)} | {cells} |")
    return lines


def _physical_lines(result: dict[str, Any]) -> list[str]:
    """The base backup's ratios against the tools that copy files, when it was measured."""
    if not result["summary"].get("physical_ratios"):
        return []
    return [
        "Like for like with the tools that copy the cluster's files: recoveryd's base backup"
        " (`mode: physical`, the backup point-in-time recovery starts from: `pg_basebackup`'s"
        " tar stream, chunked, deduplicated, compressed as its label says and encrypted),"
        " restored into an empty data directory:",
        "",
        *_ratio_lines(result, "physical_ratios", "recoveryd base backup"),
        "",
    ]


_ABSOLUTE = (
    ("backup", "wall_s", "backup wall s"),
    ("backup", "cpu_s", "backup CPU s"),
    ("backup", "db_cpu_s", "database CPU s"),
    ("backup", "store_cpu_s", "store CPU s"),
    ("backup", "peak_rss_mib", "peak RSS MiB"),
    ("backup", "stored_bytes", "stored"),
    ("backup", "objects", "objects"),
    ("restore", "wall_s", "restore wall s"),
    ("restore", "cpu_s", "restore CPU s"),
)


def _absolute_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "| tool (medians) | " + " | ".join(t for _, _, t in _ABSOLUTE) + " |",
        "|---" * (len(_ABSOLUTE) + 1) + "|",
    ]
    for tool, info in result["tools"].items():
        if info["status"] != "ok":
            continue
        if all("error" in r["results"].get(tool, {"error": ""}) for r in result["rounds"]):
            continue
        cells = [_medians(result, tool, phase, key) for phase, key, _ in _ABSOLUTE]
        lines.append(f"| {_label(result, tool)} | " + " | ".join(cells) + " |")
    return lines


def _churn_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "| tool | 1% appended + 1% updated (one id range): new bytes, wall s"
        " | then 1% random updates: new bytes, wall s |",
        "|---|---|---|",
    ]
    for tool, churn in result.get("churn", {}).items():
        cells = []
        for step in ("append_update", "random_update"):
            got = churn.get(step, {})
            if "error" in got:
                cells.append("failed")
            else:
                cells.append(f"{got.get('new_pct', '—')}% of the first, {got.get('wall_s', '—')} s")
        lines.append(f"| {_label(result, tool)} | " + " | ".join(cells) + " |")
    return lines


def _failures(result: dict[str, Any]) -> list[str]:
    """One line per peer not installed and per failed run (its error's first line)."""
    lines = []
    for tool, info in result["tools"].items():
        if info["status"] != "ok":
            lines.append(f"- {info['label']}: {info['status']}")
            continue
        for rnd in result["rounds"]:
            error = rnd["results"].get(tool, {}).get("error")
            if error:
                first = str(error).strip().splitlines()[0][:300]
                lines.append(f"- {info['label']}, round {rnd['round']}: failed ({first})")
    return lines


def _settings_lines(result: dict[str, Any]) -> list[str]:
    """How recoveryd ran (recorded by runs since packs and parallel dumps)."""
    got = result.get("recoveryd")
    if not isinstance(got, dict):
        return []
    env = ", ".join(f"`{k}={v}`" for k, v in got.get("environment", {}).items()) or "none"
    return [
        f"recoveryd ran with `jobs` {got.get('jobs', '—')} (dump and restore"
        f" processes), repository {got.get('repository', '—')}; environment: {env}, as"
        " `systemd/recoveryd.service` sets it.",
        "",
    ]


def _goal_lines(result: dict[str, Any], previous: tuple[str, dict[str, Any]] | None) -> list[str]:
    """The goals of this run, beside those of the previous recorded run when there is one."""
    goals_now = result["summary"]["goals"]
    if previous is None:
        return [f"- {g['goal']}: {g['verdict']}" for g in goals_now]
    name, before = previous
    old = {g["goal"]: g for g in before.get("summary", {}).get("goals", [])}
    lines = [
        f"| goal | this run | previous run (`{name}`, {before.get('date', '—')}) |",
        "|---|---|---|",
    ]
    for g in goals_now:
        then = old.get(g["goal"], {}).get("verdict", "not measured")
        lines.append(f"| {g['goal']} | {g['verdict']} | {then} |")
    return lines


def markdown(
    result: dict[str, Any], json_name: str, previous: tuple[str, dict[str, Any]] | None = None
) -> str:
    """The generated section of docs/PERFORMANCE.md for this result; `previous` (file name,
    result) puts the goals of the run recorded before it beside this run's."""
    db_mib = result["database_bytes"] / 1024**2
    loads = ", ".join(
        f"round {r['round']}: {r['loadavg_start'][0]:.2f} → {r['loadavg_end'][0]:.2f}"
        for r in result["rounds"]
    )
    out = [
        BEGIN,
        "",
        f"`make bench-compare` (bench/compare.py), run of {result['date']}, results in"
        f" `bench/results/{json_name}`: a {db_mib:.0f} MiB registry (bench/datagen.py,"
        f" `--scale {result['scale_gb']:g}`), one Ceph RGW store on loopback (memstore),"
        f" rounds: {len(result['rounds'])}, the tools interleaved (the order rotates),"
        f" {result['cpus']} cores. 1-minute load average before → after each round: {loads}.",
        "",
        "Absolute times move with the host's load (the load averages above include the"
        " bench's own processes); the ratios,"
        " taken within one round, are the figures to compare. Rerun on a quiet host"
        " with `make bench-compare` (options: `.venv/bin/python bench/compare.py --scale 1"
        " --rounds 3`) and check against the recorded run with `make bench-check`.",
        "",
        *_settings_lines(result),
        "Ratios recoveryd ÷ peer, median over rounds (min–max); below 1 recoveryd is faster or"
        " smaller. CPU is the tool's process tree; the database server's and the store's CPU"
        " are measured apart. Peak RSS is the largest summed RSS of the tool's process tree.",
        "",
        *_ratio_lines(result),
        "",
        *_physical_lines(result),
        *_absolute_lines(result),
        "",
        "Churn (last round's repositories, each tool's cheapest next backup: pgBackRest"
        " incremental, barman-cloud and the pipes a full one):",
        "",
        *_churn_lines(result),
        "",
        "The churn shares depend on the scale: the chunks around each changed region of the"
        " dump are stored again whatever the database's size, so they weigh more in a small"
        " dump than in a large one.",
        "",
        "Goals of the comparison, from this run"
        + (", beside the run recorded before it:" if previous else ":"),
        "",
        *_goal_lines(result, previous),
        "",
        "Peak RSS from 1 GB to 10 GB is measured by `bench/rss.py` (`make bench-rss`, section"
        ' "Peak RSS from 1 GB to 10 GB").',
    ]
    failures = _failures(result)
    if failures:
        out += ["", "Not measured:", "", *failures]
    out += [
        "",
        "Physical restores (pgBackRest, barman-cloud) are timed to the restored data directory;"
        " starting the server on it is not included. barman-cloud stores its backup"
        " unencrypted (it has no client-side encryption); recoveryd, pgBackRest (aes-256-cbc)"
        " and restic encrypt.",
        "",
        END,
    ]
    return "\n".join(out) + "\n"


def rewrite_section(text: str, section: str) -> str:
    """`text` with the marked section replaced by `section` (appended with a heading when
    the markers are not there yet)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + section.rstrip("\n") + tail
    return text.rstrip("\n") + f"\n\n{HEADING}\n\n" + section
