"""The load governor: pressure signals -> level -> admission, pause and throttle
(docs/ARCHITECTURE.md, "Data path of a shed").

Public API: `build_governor(cfg, state, run_playbook) -> Governor` (a
`flow.Admission` with `start()`, `stop()`, `status() -> GovernorStatus`), where
`run_playbook(path, level)` (a `PlaybookRunner`) runs a shedding playbook and receives
the governor's own `level` for its `pressure` probes;
`recorded_level(state)` / `refusal(state, priority, job=)` for processes without a
governor (the CLI refuses work while shedding is in force).
"""

from recoveryd.governor.build import build_governor
from recoveryd.governor.core import Governor, GovernorStatus, PlaybookOutcome, PlaybookRunner
from recoveryd.governor.level import RecordedLevel, recorded_level, refusal

__all__ = [
    "Governor",
    "GovernorStatus",
    "PlaybookOutcome",
    "PlaybookRunner",
    "RecordedLevel",
    "build_governor",
    "recorded_level",
    "refusal",
]
