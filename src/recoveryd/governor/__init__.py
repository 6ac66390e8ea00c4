"""The load governor (SPEC §5): pressure signals -> level -> admission, pause and throttle.

Public API: `build_governor(cfg, state, run_playbook) -> Governor` (a
`flow.Admission` with `start()`, `stop()`, `status() -> GovernorStatus`);
`recorded_level(state)` / `refusal(state, priority, job=)` for processes without a
governor (the CLI refuses work while shedding is in force).
"""

from recoveryd.governor.build import build_governor
from recoveryd.governor.core import Governor, GovernorStatus
from recoveryd.governor.level import RecordedLevel, recorded_level, refusal

__all__ = [
    "Governor",
    "GovernorStatus",
    "RecordedLevel",
    "build_governor",
    "recorded_level",
    "refusal",
]
