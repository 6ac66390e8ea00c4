"""`--dry-run`: every step described with its variables resolved, every SSH host reached;
nothing is changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recoveryd.drill_records import PhaseRecord
from recoveryd.drills.models import Step
from recoveryd.drills.steps.base import Outcome, Status
from recoveryd.drills.steps.dispatch import describe
from recoveryd.errors import RecoverydError

if TYPE_CHECKING:
    from recoveryd.drills.runner import DrillRunner


def dry_steps(runner: DrillRunner) -> None:
    runner.journal.write(PhaseRecord(phase="steps", status="started"))
    reachable: dict[str, str | None] = {}
    ok = True
    for step in runner.book.steps:
        start = runner.clock()
        text = describe(step)
        error = None
        for host in hosts_of(step):
            if host not in reachable:
                reachable[host] = _reach(runner, host)
            if reachable[host] is not None:
                error = f"host {host} unreachable: {reachable[host]}"
            else:
                text += f"\nhost {host} reachable"
        if step.when is not None:
            text += f"\nwhen: {step.when} -> {'run' if runner.when(step) else 'skip'}"
        if step.only_if is not None:
            text += f"\nonly_if: {describe(step.only_if)} (evaluated when the step would run)"
        status: Status = "dry_run" if error is None else "failed"
        ok = ok and error is None
        runner.record_step("step", "steps", step, start, Outcome(status, text, error), 0)
    runner.journal.write(PhaseRecord(phase="steps", status="passed" if ok else "failed"))
    if not ok:
        runner.state.status = "failed"
        runner.state.reason = "failure"
        runner.state.error = "a host is unreachable"


def _reach(runner: DrillRunner, host: str) -> str | None:
    try:
        status, _, err = runner.runners.for_host(host).run(["true"], timeout=15)
    except (RecoverydError, TimeoutError, OSError) as exc:
        return str(exc)
    return None if status == 0 else f"exit status {status}: {err.strip()}"


def hosts_of(step: Step) -> list[str]:
    """The SSH hosts one step reaches itself (not its rollback or guard)."""
    hosts = [h for h in (step.ssh, step.fault.ssh if step.fault else None) if h]
    if step.wait is not None and step.wait.ssh:
        hosts.append(step.wait.ssh)
    return hosts
