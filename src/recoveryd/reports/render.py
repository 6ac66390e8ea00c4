"""Renderers: the report model to Markdown and to one self-contained HTML file.

Renderers only render the model. One template per format serves every
language (strings from the catalog, dates and durations localised here). Every
value written passes through the redactor once more (Jinja's `finalize`), and
HTML is autoescaped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from recoveryd.reports import gantt, i18n
from recoveryd.reports.messages import Messages
from recoveryd.reports.model import Dur, Msg, Objective, Param, Report, TimelineEntry
from recoveryd.secrets import Redactor

FORMATS = ("md", "html", "pdf")


class Raw(str):
    """A Markdown value written as is (inside a code block): redacted but not escaped."""

    __slots__ = ()


def render_markdown(report: Report, lang: str, redact: Redactor) -> str:
    """The report as GitHub-flavoured Markdown."""
    env = _env(redact, html=False)
    return env.get_template("report.md.j2").render(**_context(report, lang, markdown=True))


def render_html(report: Report, lang: str, redact: Redactor, *, for_print: bool = False) -> str:
    """The report as one HTML file with inline CSS and an inline SVG timeline chart: it loads no
    external resource. `for_print` adds the paged-media rules used for PDF."""
    env = _env(redact, html=True)
    css = resources.files("recoveryd.reports").joinpath("templates/report.css").read_text("utf-8")
    chart = gantt.build_chart(report)
    return env.get_template("report.html.j2").render(
        **_context(report, lang, markdown=False),
        css=Markup(css),  # noqa: S704 - our own stylesheet, shipped with the package
        chart=chart,
        for_print=for_print,
    )


def _env(redact: Redactor, *, html: bool) -> jinja2.Environment:
    def finalize(value: Any) -> Any:
        if isinstance(value, Markup):
            return Markup(redact(str(value)))  # noqa: S704 - re-wrapping our own escaped markup
        if isinstance(value, Raw):
            return Raw(redact(value))
        if isinstance(value, str):
            return redact(value) if html else _md_cell(redact(value))
        return value

    return jinja2.Environment(
        loader=jinja2.PackageLoader("recoveryd.reports", "templates"),
        # Markdown is escaped by `finalize` (table cells); HTML by Jinja's autoescape.
        autoescape=html,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )


def _context(report: Report, lang: str, *, markdown: bool) -> dict[str, Any]:
    m = i18n.catalog(lang)
    tz = i18n.zone(report.timezone)

    def t(value: Msg | str | None) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return translate(value, m, lang, tz)

    def st(status: str | None) -> str:
        if not status:
            return ""
        return str(m.get(f"status_{status}", status))

    def what(e: TimelineEntry) -> str:
        kind = str(m.get(f"kind_{e.kind}", e.kind))
        name = t(e.name)
        label = f"{kind}{m['colon']}{name}" if name else kind
        if e.phase and e.kind == "probe":
            label += f" ({phase(e.phase)})"
        return label

    def phase(name: str) -> str:
        return str(m.get(f"phase_{name}", name))

    def verdict(o: Objective) -> str:
        if report.dry_run and report.kind == "drill":
            return m["not_judged"]
        if o.met is not None:
            return m["met"] if o.met else m["missed"]
        return m["no_objective"] if o.target_s is None else m["not_measured"]

    return {
        "r": report,
        "m": m,
        "lang": lang,
        "t": t,
        "st": st,
        "what": what,
        "phase": phase,
        "verdict": verdict,
        "msg": Msg.of,
        "dt": lambda d: i18n.format_datetime(d, lang, tz),
        "zone": i18n.zone_label(report.timezone, report.started) or m["zone_utc"],
        "stepkind": lambda k: str(m.get(f"stepkind_{k}", k)),
        "day": lambda d: i18n.format_date(d, lang),
        "dur": lambda s: i18n.format_duration(s, lang),
        "offset": i18n.format_offset,
        "raw": lambda s: Raw(s.replace("```", "'''")) if markdown else s,
    }


def translate(msg: Msg, m: Messages, lang: str, tz: tzinfo = UTC) -> str:
    """The sentence of `msg` in the catalog's language, with parameters localised."""
    template = str(m[msg.key])  # type: ignore[literal-required]
    return template.format(**{k: _param(v, m, lang, tz) for k, v in msg.params})


def _param(value: Param, m: Messages, lang: str, tz: tzinfo) -> str:
    if isinstance(value, Msg):
        return translate(value, m, lang, tz)
    if isinstance(value, Dur):
        return i18n.format_duration(value.seconds, lang)
    if isinstance(value, datetime):
        return i18n.format_datetime(value, lang, tz)
    if isinstance(value, date):
        return i18n.format_date(value, lang)
    return str(value)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", " ")
