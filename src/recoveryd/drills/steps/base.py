"""What every step kind receives and returns."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from recoveryd.config import LoadedConfig
from recoveryd.drills.models import LoadedPlaybook
from recoveryd.sources.base import CommandRunner

# not_run: a rollback left alone because its step was cut short and it has no only_if
Status = Literal["ok", "failed", "skipped", "timeout", "dry_run", "aborted", "not_run"]


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt at a step or probe.

    `undo` is set by steps that changed something with an automatic undo (faults);
    the runner calls it during rollback / cleanup.
    """

    status: Status
    output: str = ""
    error: str | None = None
    undo: Callable[[], Outcome] | None = field(default=None, compare=False)
    attempts: int = field(default=1, compare=False)  # set by the runner's retries

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "dry_run", "skipped")


class Approvals(Protocol):
    def wait_for(self, count: int, timeout: float, cancel: threading.Event) -> list[str]:
        """Block until `count` distinct approvers; returns them. TimeoutError / cancel."""
        ...


class Runners(Protocol):
    def for_host(self, name: str | None) -> CommandRunner:
        """The local runner (None) or the SSH runner of a playbook/config host."""
        ...


@dataclass
class StepContext:
    """Everything a step may use. `cancel` is set on abort, stop condition or signal."""

    loaded: LoadedPlaybook
    cfg: LoadedConfig | None
    cancel: threading.Event
    runners: Runners
    approvals: Approvals
    state_dir: Path
    pressure: Callable[[], str]

    @property
    def base_dir(self) -> Path:
        return Path(self.loaded.base_dir)

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p


def ok_or_failed(ok: bool, output: str, detail: str) -> Outcome:
    return Outcome("ok", output) if ok else Outcome("failed", output, detail)
