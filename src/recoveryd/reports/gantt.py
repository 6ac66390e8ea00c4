"""Geometry of the timeline chart (a Gantt of steps with fault/recovery marks and the RTO line).

Pure layout: the HTML template draws the SVG from these numbers, so the chart
needs no script, no font metrics and no external asset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from recoveryd.reports.model import Report

WIDTH = 760
LABEL_W = 230
ROW_H = 20
TOP = 26
BOTTOM = 30
_NICE_STEPS = (
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    21600,
)
_MAX_LABEL = 34
# colours are SVG presentation attributes, not CSS: WeasyPrint's SVG renderer ignores page CSS
_FILL = {"failed": "#b3261e", "timeout": "#b3261e", "aborted": "#b3261e", "skipped": "#c4c9ce"}
_FILL_TYPE = {"step": "#4a90d9", "probe": "#8fb8e6", "rollback": "#9a6700"}
_LINE = {"fault_start": "#b3261e", "fault": "#b3261e", "recovered": "#1b7f3b", "rto": "#9a6700"}


@dataclass(frozen=True)
class Bar:
    y: float
    x: float
    w: float
    label: str
    status: str  # css class: ok, failed, skipped...
    record_type: str
    title: str  # tooltip: name, status, duration
    fill: str


@dataclass(frozen=True)
class Line:
    x: float
    kind: str  # fault | recovered | rto
    label_key: str  # catalog key of its caption
    color: str
    dashed: bool
    beyond: bool = False  # the objective falls after the run: drawn at the right edge


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    label_w: int
    top: int
    plot_bottom: float
    bars: tuple[Bar, ...]
    lines: tuple[Line, ...]
    ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not self.bars and not self.lines


def build_chart(report: Report) -> Chart:
    """Bars for every timed step, check and rollback; vertical lines for the marks and for
    the RTO objective counted from the start of the outage. The x axis is seconds since the
    start of the run, scaled to the run itself (a 0.3 s run fills the chart); an objective
    that falls after the run is drawn at the right edge, marked as beyond it."""
    rows = [s for s in report.steps if s.start is not None]
    t0 = report.started
    ends = [((s.end or s.start) - t0).total_seconds() for s in rows if s.start]
    ends += [m.offset_s for m in report.marks]
    if report.ended is not None:
        ends.append((report.ended - t0).total_seconds())
    span = max([0.05, *ends])
    step = next((s for s in _NICE_STEPS if span / s <= 8), _NICE_STEPS[-1])
    span = step * (math.floor(span / step + 1e-9) + 1)  # a free tick after the last event
    plot_w = WIDTH - LABEL_W - 10
    rto_at = _rto_offset(report)

    def x(seconds: float) -> float:
        return round(LABEL_W + min(max(0.0, seconds), span) / span * plot_w, 1)

    bars = []
    for i, s in enumerate(rows):
        assert s.start is not None  # noqa: S101 - filtered above
        start = (s.start - t0).total_seconds()
        dur = s.duration_s or 0.0
        name = s.name if len(s.name) <= _MAX_LABEL else s.name[: _MAX_LABEL - 1] + "…"
        bars.append(
            Bar(
                y=TOP + i * ROW_H,
                x=x(start),
                w=max(2.0, round(x(start + dur) - x(start), 1)),
                label=name,
                status=s.status or "unknown",
                record_type=s.record_type,
                title=f"{s.name}: {s.status} ({dur:.1f}s)",
                fill=_FILL.get(s.status, _FILL_TYPE.get(s.record_type, "#4a90d9")),
            )
        )
    lines = _outage_start(report, x) + [
        Line(x(m.offset_s), m.mark, f"chart_{m.mark}", _LINE.get(m.mark, "#5f6368"), False)
        for m in report.marks
    ]
    if rto_at is not None:
        beyond = rto_at > span
        key = "chart_rto_beyond" if beyond else "chart_rto_line"
        lines.append(Line(x(rto_at), "rto", key, _LINE["rto"], True, beyond))
    plot_bottom = TOP + max(1, len(rows)) * ROW_H
    n = round(span / step)
    ticks = tuple(Tick(x(k * step), _tick_label(k * step)) for k in range(n + 1))
    return Chart(
        width=WIDTH,
        height=int(plot_bottom + BOTTOM),
        label_w=LABEL_W,
        top=TOP,
        plot_bottom=plot_bottom,
        bars=tuple(bars),
        lines=tuple(lines),
        ticks=ticks,
    )


def _outage_start(report: Report, x: Callable[[float], float]) -> list[Line]:
    """A line where the outage began, unless a `fault_start` mark already draws it."""
    start = report.impact.outage_start
    if start is None or any(m.mark == "fault_start" for m in report.marks):
        return []
    at = x((start - report.started).total_seconds())
    return [Line(at, "fault_start", "chart_fault_start", _LINE["fault_start"], False)]


def _rto_offset(report: Report) -> float | None:
    """Seconds from the start of the run to the end of the RTO objective, counted from the
    start of the outage."""
    rto = report.objective("rto")
    start = report.impact.outage_start
    if rto is None or rto.target_s is None or start is None:
        return None
    return (start - report.started).total_seconds() + rto.target_s


def _tick_label(seconds: float) -> str:
    if seconds < 60 or seconds % 60:
        return f"{round(seconds, 3):g}s"
    if seconds < 3600 or seconds % 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
