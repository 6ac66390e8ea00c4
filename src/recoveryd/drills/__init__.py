"""Failover and restore drills from YAML playbooks (docs/PLAYBOOKS.md). The API is in `api.py`."""

from __future__ import annotations

from recoveryd.drills.api import (
    DrillResult,
    approve,
    list_runs,
    run_playbook,
    run_restore_drill,
    validate_playbook,
)

__all__ = [
    "DrillResult",
    "approve",
    "list_runs",
    "run_playbook",
    "run_restore_drill",
    "validate_playbook",
]
