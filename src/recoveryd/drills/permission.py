"""Whether a run may change anything: `--yes`, or signed approvals of configured approvers.

Destructive steps need `--yes` or approvals; the number required is the playbook's
`approvals.required`, raised to the configuration's `approval_policy.destructive_min`
when the playbook has a destructive step. A run that needs more approvals than the
configured approvers (other than the operator) could give is refused before anything
runs (exit 5); approvals that do not arrive in time fail the run (exit 5).

A shedding playbook the governor started waits like any other run, but never past the
level it was started for: when the governor's level changes before the approvals came,
the run fails without changing anything, and the daemon's stop interrupts the wait (the
governor's next action is not held up behind a wait nobody needs any more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recoveryd.config import LoadedConfig
from recoveryd.drill_records import EventRecord
from recoveryd.drills.approvals import NoLongerWantedError
from recoveryd.drills.models import Playbook
from recoveryd.errors import RefusedError

if TYPE_CHECKING:
    from recoveryd.drills.runner import DrillRunner


def required_approvals(book: Playbook, cfg: LoadedConfig | None) -> int:
    """The playbook's own `approvals.required`, raised to the configuration's
    `approval_policy.destructive_min` when the playbook has a destructive step."""
    policy = cfg.config.approval_policy.destructive_min if cfg is not None else 0
    if not any(s.is_destructive for s in book.steps):
        policy = 0
    return max(book.approvals.required, policy)


def check_permission(runner: DrillRunner) -> None:
    """Destructive steps need --yes or approvals; refused (exit 5) before anything runs,
    also when fewer approvers than needed could ever approve."""
    if runner.dry_run:
        return
    book = runner.book
    need = runner.required_approvals
    if need > 0:
        box = runner.approvals
        able = set(box.keys) - box.operators - {runner.operator}
        if len(able) < need:
            raise RefusedError(
                f"drill {book.name}: destructive steps need {need} approval(s), but "
                f"{len(able)} configured approver(s) other than you can give one; name "
                "approvers with their public keys under `approvers:` in the configuration"
            )
        return
    if runner.yes:
        return
    destructive = [s.name for s in book.steps if s.is_destructive]
    if destructive:
        raise RefusedError(
            f'drill {book.name}: step "{destructive[0]}" is destructive; rerun with '
            "--yes, or require approvals in the playbook"
        )


def await_approvals(runner: DrillRunner) -> bool:
    """Ask for the approvals and wait; False when they did not arrive in time (the run
    fails, exit 5) or the run was aborted meanwhile."""
    need = runner.required_approvals
    command = f"recoveryd drill approve {runner.run_id} --key FILE"
    data = {"required": need, "command": command, "playbook_sha256": runner.loaded.sha256}
    runner.approvals.open(need)  # approvers can sign as soon as they read the request
    runner.journal.write(EventRecord(kind="approval_requested", data=data))
    shed_level = runner.governor_level
    started_at = shed_level() if shed_level is not None else None
    wanted = (lambda: shed_level() == started_at) if shed_level is not None else (lambda: True)
    try:
        runner.approvals.wait_for(need, runner.book.approvals.timeout, runner.abort, wanted)
    except TimeoutError:
        _no_approval(runner, f"fewer than {need} approval(s) arrived in time")
        return False
    except NoLongerWantedError:
        _no_approval(
            runner,
            f"the load level left {started_at} before {need} approval(s) arrived; "
            "the shedding playbook is no longer wanted",
        )
        return False
    except InterruptedError:
        return False
    return True


def _no_approval(runner: DrillRunner, error: str) -> None:
    st = runner.state
    st.status = "failed"
    st.reason = "failure"
    st.error = error
    st.approval_missing = True
