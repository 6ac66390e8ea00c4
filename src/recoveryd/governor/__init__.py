"""The load governor (SPEC §5): pressure signals -> level -> admission, pause and throttle.

Public API: `build_governor(cfg, state, run_playbook) -> Governor` (a
`flow.Admission` with `start()`, `stop()`, `status() -> GovernorStatus`).
"""

from recoveryd.governor.build import build_governor
from recoveryd.governor.core import Governor, GovernorStatus

__all__ = ["Governor", "GovernorStatus", "build_governor"]
