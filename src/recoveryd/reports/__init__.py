"""Incident and drill reports: Markdown, self-contained HTML and PDF, in en and zh
(README, "Commands").

Public API (what the CLI, the drill runner and the demo call):

    render_run_report(state_dir: Path, run_id: str, *, fmt: str = "html", lang: str = "en",
                      out: Path | None = None, config: Config | None = None,
                      secrets: Sequence[str] = (), now: datetime | None = None) -> Path
        Render the report of drill run `run_id` (journal at
        `state_dir/drills/<RUN_ID>/journal.jsonl`) or incident `run_id`
        (`state_dir/incidents/<ID>.jsonl`). Default `out`: next to the record,
        `report.<lang>.<ext>` for a drill, `<ID>.report.<lang>.<ext>` for an
        incident. `config` adds the sources' RPOs (and for incidents, the list of
        sources); `secrets` are literal values to mask besides the known patterns.
        Raises UnknownRunError (exit 2) naming the run when it does not exist.

    render_demo_report(state_dir: Path, *, fmt: str = "html", lang: str | None = None,
                       config: Config | None = None) -> Path
        Render the report of the most recent drill run under `state_dir` and return
        its path; `make run` prints it. `state_dir` may also be a folder holding
        `recoveryd.yaml` (the demo folder): its configuration gives the state
        directory and the language. With no drill run, the report covers the
        backups, verifies and restores the state store recorded (`session.py`).

Layout: `model` (typed report), `build` (pure: records + state -> model),
`load` (reads the record file and the state store), `render` (Markdown, HTML via
jinja2), `pdf` (WeasyPrint), `i18n` (catalogs, dates, durations);
redaction is the one rule of `recoveryd.secrets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from recoveryd import drill_records, incident_records
from recoveryd.atomic import write_atomic
from recoveryd.errors import UsageError
from recoveryd.reports.build import build_report
from recoveryd.reports.i18n import LANGS
from recoveryd.reports.load import (
    ReportError,
    check_seal,
    find_record,
    load_state,
    read_record,
    record_window,
)
from recoveryd.reports.model import Report
from recoveryd.reports.render import FORMATS, render_html, render_markdown
from recoveryd.secrets import Redactor

if TYPE_CHECKING:
    from recoveryd.config import Config

__all__ = [
    "FORMATS",
    "LANGS",
    "Report",
    "ReportError",
    "load_report",
    "render_demo_report",
    "render_report_bytes",
    "render_run_report",
]


def load_report(
    state_dir: Path,
    report_id: str,
    *,
    config: Config | None = None,
    secrets: Sequence[str] = (),
    now: datetime | None = None,
) -> Report:
    """The report model of a drill run or incident, from its record and the state store."""
    state_dir = Path(state_dir)
    return _load(state_dir, find_record(state_dir, report_id), report_id, config, secrets, now)


def _load(
    state_dir: Path,
    path: Path,
    report_id: str,
    config: Config | None,
    secrets: Sequence[str],
    now: datetime | None,
) -> Report:
    now = now or datetime.now(UTC)
    record = read_record(path, report_id, shown_as=str(path.relative_to(state_dir)))
    record = check_seal(record, state_dir)
    since, until = record_window(record, now)
    first = record.records[0]
    rpos = {n: s.rpo for n, s in config.sources.items()} if config is not None else {}
    sources: list[str] | None
    started, opened = drill_records.parse(first), incident_records.parse(first)
    if isinstance(started, drill_records.RunStarted):
        sources = list(started.sources)
    elif isinstance(opened, incident_records.Opened) and opened.source is not None:
        sources = [opened.source]  # an incident naming the source at risk
    else:
        sources = list(config.sources) if config is not None else None
    state = load_state(state_dir, since, until, sources=sources, rpos=rpos)
    timezone = (config.daemon.timezone if config is not None else None) or "UTC"
    try:
        return build_report(record, state, now, _redactor(secrets), timezone=timezone)
    except ValueError as exc:
        raise ReportError(f"report: {exc}") from exc


def render_report_bytes(
    report: Report, *, fmt: str, lang: str, secrets: Sequence[str] = ()
) -> bytes:
    """The rendered document; every value is redacted once more on the way out."""
    _check(fmt, lang)
    redact = _redactor(secrets)
    if fmt == "md":
        return render_markdown(report, lang, redact).encode()
    if fmt == "html":
        return render_html(report, lang, redact).encode()
    from recoveryd.reports.pdf import html_to_pdf

    return html_to_pdf(render_html(report, lang, redact, for_print=True))


def render_run_report(
    state_dir: Path,
    run_id: str,
    *,
    fmt: str = "html",
    lang: str = "en",
    out: Path | None = None,
    config: Config | None = None,
    secrets: Sequence[str] = (),
    now: datetime | None = None,
) -> Path:
    """Render and write the report of a drill run or incident; returns the file written."""
    _check(fmt, lang)
    state_dir = Path(state_dir)
    report = load_report(state_dir, run_id, config=config, secrets=secrets, now=now)
    data = render_report_bytes(report, fmt=fmt, lang=lang, secrets=secrets)
    target = (
        Path(out) if out is not None else _default_out(find_record(state_dir, run_id), fmt, lang)
    )
    _write_atomic(target, data)
    return target


def render_demo_report(
    state_dir: Path,
    *,
    fmt: str = "html",
    lang: str | None = None,
    config: Config | None = None,
) -> Path:
    """Render the report of the newest drill run under `state_dir` (or of the recorded
    backup-restore round trip when no drill ran); returns the file written."""
    state_dir, config = _locate(Path(state_dir), config)
    lang = lang or (config.language if config is not None else "en")
    journals = sorted(
        (p.stat().st_mtime, p.parent.name) for p in (state_dir / "drills").glob("*/journal.jsonl")
    )
    if journals:
        return render_run_report(state_dir, journals[-1][1], fmt=fmt, lang=lang, config=config)
    from recoveryd.reports.session import write_session_journal

    path = write_session_journal(state_dir, config)
    if path is None:
        raise ReportError(
            f"report: nothing recorded under {state_dir} yet; run a backup or a drill first"
        )
    _check(fmt, lang)
    report = _load(state_dir, path, path.parent.name, config, (), None)
    target = path.parent / f"report.{lang}.{fmt}"
    _write_atomic(target, render_report_bytes(report, fmt=fmt, lang=lang))
    return target


def _locate(path: Path, config: Config | None) -> tuple[Path, Config | None]:
    """A state directory, or a folder with `recoveryd.yaml` naming one."""
    config_file = path / "recoveryd.yaml"
    if config_file.is_file() and not (path / "state.db").is_file():
        from recoveryd.config import load_config

        loaded = load_config(config_file)
        return loaded.resolve_path(loaded.config.state_dir), config or loaded.config
    return path, config


def _redactor(secrets: Sequence[str]) -> Redactor:
    from recoveryd import secrets as rule

    return rule.REDACTOR.with_values(secrets)


def _check(fmt: str, lang: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f'report: unknown format "{fmt}"; use one of: {", ".join(FORMATS)}')
    if lang not in LANGS:
        raise UsageError(f'report: unknown language "{lang}"; use one of: {", ".join(LANGS)}')


def _default_out(record_path: Path, fmt: str, lang: str) -> Path:
    if record_path.name == "journal.jsonl":
        return record_path.parent / f"report.{lang}.{fmt}"
    return record_path.with_name(f"{record_path.stem}.report.{lang}.{fmt}")


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data, mode=0o600)
