"""Drill reports for the callers of the drill runner: the runner journals a run, the
CLI and the daemon ask for its report through the writer made here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from recoveryd.config import LoadedConfig
from recoveryd.drills.result import ReportWriter
from recoveryd.reports import render_run_report


def report_writer(cfg: LoadedConfig | None) -> ReportWriter:
    """The HTML report of a run, in the configured language, written beside its journal."""
    config = cfg.config if cfg is not None else None
    lang = config.language if config is not None else "en"

    def write(state_dir: Path, run_id: str, secrets: Sequence[str]) -> Path:
        return render_run_report(
            state_dir, run_id, fmt="html", lang=lang, config=config, secrets=secrets
        )

    return write
