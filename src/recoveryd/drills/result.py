"""What a drill run returns to its callers (CLI, daemon, governor)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from recoveryd.errors import ExitCode

# aborted: a stop condition stopped the run; interrupted: a signal (or the caller) did
RunStatus = Literal["passed", "failed", "aborted", "interrupted"]

ReportWriter = Callable[[Path, str, Sequence[str]], Path]
"""Writes the report of run `run_id` (2nd) kept in `state_dir` (1st), masking `secrets`
(3rd), and returns its path. Injected by the CLI and the daemon, which choose the format
and language: the drill runner renders nothing itself."""


@dataclass(frozen=True)
class DrillResult:
    run_id: str
    status: RunStatus
    rto_seconds: float | None
    rpo_seconds: float | None
    objectives_met: bool | None  # None: not judged (a dry run measures nothing)
    journal: Path
    report: Path | None = None
    error: str | None = None
    interrupted: bool = False
    measures: dict[str, int] = field(default_factory=dict)  # from steps with `measure:`
    dry_run: bool = False
    approval_missing: bool = False  # the approvals needed did not arrive in time

    def to_json(self) -> dict[str, object]:
        """SPEC §1 `drill run --json`."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "rto_seconds": None if self.rto_seconds is None else round(self.rto_seconds, 3),
            "rpo_seconds": None if self.rpo_seconds is None else round(self.rpo_seconds, 3),
            "objectives_met": self.objectives_met,  # null: a dry run, not judged
            "journal": str(self.journal),
            "report": None if self.report is None else str(self.report),
        }

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.approval_missing:
            return ExitCode.REFUSED
        if self.status == "passed" and (self.objectives_met or self.dry_run):
            return ExitCode.OK
        return ExitCode.OBJECTIVE_MISSED
