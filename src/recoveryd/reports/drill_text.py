"""What a drill report says in words: its summary, its action items and the cause of its end.

Every sentence is derived from what was recorded (steps, probes, rollbacks, stop
conditions, marks), not from the runner's English error text, so that it reads
the same in every language; the recorded error is quoted only when nothing
recorded explains the end of the run.
"""

from __future__ import annotations

from datetime import date, timedelta

from recoveryd.reports import _common as c
from recoveryd.reports.model import ActionItem, Dur, Msg, Report, StepRow

# a failed objective or a broken record becomes an action item due this many days later
ACTION_DUE_DAYS = 14
_FAILED = ("failed", "timeout", "aborted", "interrupted")
# sentences that already say why a run did not pass
_EXPLAINING = frozenset(
    {"s_stop_tripped", "s_step_failed", "s_steady_not_restored", "s_rto_missed"}
    | {"s_rpo_missed", "s_rollback_failed", "s_interrupted"}
)


def failed_step(report: Report) -> StepRow | None:
    return next((s for s in report.steps if s.phase == "steps" and s.status in _FAILED), None)


def _after_probes(report: Report) -> list[StepRow]:
    return [s for s in report.steps if s.phase == "steady_state_after"]


def steady_after(report: Report) -> bool | None:
    """True when steady-state probes ran after the drill and all held; None when none ran."""
    probes = _after_probes(report)
    if not probes:
        return None
    return all(s.status == "ok" for s in probes)


def rollbacks(report: Report, statuses: tuple[str, ...]) -> list[StepRow]:
    return [s for s in report.steps if s.record_type == "rollback" and s.status in statuses]


def _skipped_rollbacks(report: Report) -> list[Msg]:
    """A rollback skipped because its `only_if` did not hold, skipped otherwise, or not run
    because its step was cut short and it has no `only_if` to tell whether it is needed."""
    out = []
    for s in rollbacks(report, ("skipped", "not_run")):
        if s.status == "not_run":
            out.append(Msg.of("s_rollback_not_run", name=s.name))
        elif s.guard is not None:
            out.append(Msg.of("s_rollback_guarded", name=s.name, guard=s.guard))
        else:
            out.append(Msg.of("s_rollback_skipped", name=s.name, error=s.error or ""))
    return out


def cause(report: Report, error: str | None) -> Msg | str:
    """Why the run ended as it did, for the timeline's last row."""
    tripped = next((s for s in report.stop_conditions if s.status == "tripped"), None)
    if tripped is not None:
        return Msg.of("s_stop_tripped", name=tripped.name)
    if report.status == "interrupted":
        return Msg("s_interrupted")
    step = failed_step(report)
    if step is not None:
        return Msg.of("s_step_failed", name=step.name, error=step.error or step.status)
    if steady_after(report) is False:
        return Msg("s_steady_not_restored")
    if any(o.met is False for o in report.objectives):
        return Msg("d_objective_missed")
    return error or ""


def summary(report: Report, error: str | None, n_shed: int) -> tuple[Msg, ...]:
    out = _headline(report)
    if not report.dry_run:
        out += [c.objective_sentence(o) for o in report.objectives]
        out += _steady_sentence(report)
    out += [
        Msg.of("s_stop_tripped", name=s.name)
        for s in report.stop_conditions
        if s.status == "tripped"
    ]
    if report.status == "interrupted":
        out.append(Msg("s_interrupted"))
    step = failed_step(report)
    if step is not None:
        out.append(Msg.of("s_step_failed", name=step.name, error=step.error or step.status))
    out += [
        Msg.of("s_rollback_failed", name=s.name, error=s.error or s.status)
        for s in rollbacks(report, _FAILED)
    ]
    out += _skipped_rollbacks(report)
    if error and not _explained(report, out):
        out.append(Msg.of("s_error", error=error))
    out.extend(c.common_summary(report, n_shed))
    return tuple(m for m in out if m.key)


def _headline(report: Report) -> list[Msg]:
    name, when = report.title, report.started
    if report.dry_run:
        key = "s_drill_dry" if report.status == "dry_run" else "s_drill_dry_failed"
        return [Msg.of(key, name=name, date=when)]
    if report.status == "missed":
        return [Msg.of("s_drill_missed", name=name, date=when)]
    status = Msg(f"status_{report.status}")
    return [Msg.of("s_drill_result", name=name, status=status, date=when)]


def _steady_sentence(report: Report) -> list[Msg]:
    held = steady_after(report)
    if held is True:
        return [Msg("s_steady_restored")]
    if held is False:
        return [Msg("s_steady_not_restored")]
    return [Msg("s_steady_unchecked")] if report.complete else []


def _explained(report: Report, said: list[Msg]) -> bool:
    """Whether a sentence already says why the run did not pass."""
    if report.status in ("passed", "dry_run"):
        return True
    return any(m.key in _EXPLAINING for m in said)


def actions(report: Report, base: date) -> tuple[ActionItem, ...]:
    due = base + timedelta(days=ACTION_DUE_DAYS)
    owner: Msg | str = report.owners.vendor or Msg("owner_vendor")

    def item(text: Msg) -> ActionItem:
        return ActionItem(text, owner, due, "generated")

    out: list[ActionItem] = []
    for o in report.objectives:
        if o.met is False:
            key = "act_rto_missed" if o.name == "rto" else "act_rpo_missed"
            out.append(
                item(Msg.of(key, achieved=Dur(o.achieved_s or 0), target=Dur(o.target_s or 0)))
            )
    if steady_after(report) is False:
        out.append(item(Msg("act_steady_state")))
    for s in report.steps:
        if s.phase == "steps" and s.status in ("failed", "timeout"):
            out.append(item(Msg.of("act_step_failed", name=s.name)))
    out += [item(Msg.of("act_rollback_failed", name=s.name)) for s in rollbacks(report, _FAILED)]
    out += [
        item(Msg.of("act_rollback_skipped", name=s.name)) for s in rollbacks(report, ("skipped",))
    ]
    out += [
        item(Msg.of("act_rollback_not_run", name=s.name)) for s in rollbacks(report, ("not_run",))
    ]
    return tuple(out)
