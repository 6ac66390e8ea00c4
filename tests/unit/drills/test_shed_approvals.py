"""Shedding playbooks the load governor starts under a configured `approval_policy`: they
wait for signed approvals like any run (docs/PLAYBOOKS.md, signed approvals), but the wait
never outlives its reason: it ends when the governor's level changes or the daemon stops."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from recoveryd.config import load_config
from recoveryd.daemon.ops import AppOperations
from recoveryd.drills.api import run_playbook
from tests.unit.drills.helpers import records, write_playbook
from tests.unit.drills.test_signed_approvals import _config, _keys

SHED = """\
apiVersion: recoveryd/v1
kind: Drill
name: essential-only
approvals: {{timeout: 1h}}
steps:
  - {{name: switch the proxy, run: [touch, "{marker}"], destructive: true}}
"""


class Levels:
    """The governor's level as the run sees it: `first` when asked first, `then` after."""

    def __init__(self, first: str, then: str) -> None:
        self.seen = [first]
        self.then = then

    def __call__(self) -> str:
        level = self.seen[-1]
        self.seen.append(self.then)
        return level


@pytest.mark.timeout(120)  # without the fix the run waits the playbook's whole hour
def test_a_shedding_playbook_waiting_for_approvals_gives_up_when_its_level_is_left(
    tmp_path: Path,
) -> None:
    """Under `approval_policy: {destructive_min: 1}` the governor's shedding playbook asks for
    an approval and waits; when the level it was started for is left before anyone approved
    (the surge is over), the run fails at once without changing anything, and says why, so
    the governor's next action (restoring full service) is not held up for an hour."""
    keys = _keys(tmp_path, "alice")
    cfg = load_config(_config(tmp_path, keys, ("alice",), policy=1))
    book = write_playbook(tmp_path, SHED.format(marker=tmp_path / "switched"))
    levels = Levels("critical", "normal")
    result = run_playbook(cfg, book, yes=True, state_dir=tmp_path / "state", level=levels)
    assert result.status == "failed" and result.approval_missing
    assert result.error is not None and "left critical" in result.error
    assert not (tmp_path / "switched").exists()
    assert records(result.journal, "event")[0]["kind"] == "approval_requested"


@pytest.mark.timeout(120)
def test_the_daemon_stopping_interrupts_a_shedding_playbook_waiting_for_approvals(
    tmp_path: Path,
) -> None:
    """The daemon hands its `stopping` event to the governor's shedding playbooks: a stop
    that comes while one waits for approvals interrupts it (status `interrupted`), nothing is
    changed, and the daemon's stop is not held up by the wait."""
    keys = _keys(tmp_path, "alice")
    cfg = load_config(_config(tmp_path, keys, ("alice",), policy=1))
    book = write_playbook(tmp_path, SHED.format(marker=tmp_path / "switched"))
    stopping = threading.Event()
    stopping.set()
    result = AppOperations().run_playbook(
        cfg, book, Levels("critical", "critical"), stopping=stopping
    )
    assert result.status == "interrupted", result.error
    assert not (tmp_path / "switched").exists()
