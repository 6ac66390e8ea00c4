"""Pick the module of a step's kind; `wait` and `sleep` live here (they only compose)."""

from __future__ import annotations

import shlex
import time

from recoveryd.drills.models import Probe, Step
from recoveryd.drills.steps import approve, command, fault, http, ops, pressure, sql
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.secrets import resolve_secret

DEFAULT_TIMEOUT = 300.0
DEFAULT_WAIT_TIMEOUT = 60.0


def execute(step: Step | Probe, ctx: StepContext, timeout: float | None = None) -> Outcome:
    """Run one attempt of a step or probe (no retries, no journal)."""
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    if step.run is not None:
        return command.run_run(
            ctx,
            run=step.run,
            shell=step.shell,
            ssh=step.ssh,
            env=step.env if isinstance(step, Step) else {},
            expect=step.expect,
            timeout=limit,
        )
    if step.sql is not None:
        password = None
        if step.password_file:
            password = resolve_secret(step.password_file, ctx.base_dir, setting="password_file")
        return sql.run_sql(
            ctx,
            on=str(step.on),
            sql=step.sql,
            engine=step.engine,
            expect=step.expect,
            timeout=limit,
            password=password,
        )
    if step.http is not None:
        return http.run_http(ctx, req=step.http, expect=step.expect, timeout=limit)
    if step.pressure is not None:
        return pressure.run_pressure(ctx, below=step.pressure)
    if isinstance(step, Probe):
        return Outcome("failed", "", "a wait probe needs run, sql, http or pressure")
    return _execute_step(step, ctx, timeout)


def _execute_step(step: Step, ctx: StepContext, timeout: float | None) -> Outcome:
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    if step.wait is not None:
        return run_wait(step.wait, ctx, timeout or DEFAULT_WAIT_TIMEOUT, step.interval)
    if step.sleep is not None:
        if ctx.cancel.wait(step.sleep):
            return Outcome("aborted", "", "aborted during sleep")
        return Outcome("ok", f"slept {step.sleep:g}s")
    if step.backup is not None:
        return ops.run_backup(ctx, step.backup)
    if step.restore is not None:
        return ops.run_restore(ctx, step.restore, limit)
    if step.verify is not None:
        return ops.run_verify(ctx, step.verify)
    if step.fault is not None:
        return fault.run_fault(ctx, step.fault, min(limit, 60.0))
    if step.approve is not None:
        return approve.run_approve(
            ctx, message=step.approve, count=step.approvals, timeout=timeout or 3600.0
        )
    return Outcome("failed", "", f"step kind {step.kind} cannot run here")


def run_wait(probe: Probe, ctx: StepContext, timeout: float, interval: float) -> Outcome:
    """Poll `probe` every `interval` until it matches; `timeout` status when it never does."""
    deadline = time.monotonic() + timeout
    attempts = 0
    last = Outcome("failed", "", "not tried")
    while True:
        attempts += 1
        left = max(0.5, deadline - time.monotonic())
        last = execute(probe, ctx, min(left, 30.0))
        if last.status == "ok":
            return Outcome("ok", f"{last.output}\n(matched after {attempts} attempt(s))".strip())
        if ctx.cancel.is_set():
            return Outcome("aborted", last.output, "aborted while waiting")
        if time.monotonic() + interval > deadline:
            return Outcome(
                "timeout", last.output, f"did not match within {timeout:g}s: {last.error}"
            )
        if ctx.cancel.wait(interval):
            return Outcome("aborted", last.output, "aborted while waiting")


def describe(step: Step | Probe) -> str:
    """What the step would do, variables resolved (for --dry-run and the journal)."""
    if step.run is not None:
        cmd = step.run if isinstance(step.run, str) else shlex.join(step.run)
        where = f"on {step.ssh}: " if step.ssh else "locally: "
        return where + (f"sh -c {shlex.quote(cmd)}" if step.shell else cmd)
    if step.sql is not None:
        return f"sql on {step.on}: {step.sql}"
    if step.http is not None:
        return f"{step.http.method} {step.http.url}"
    if step.pressure is not None:
        return f"pressure {step.pressure}"
    if isinstance(step, Probe):
        return "probe"
    if step.wait is not None:
        return f"wait until ({describe(step.wait)}) matches {step.wait.expect!r}"
    if step.sleep is not None:
        return f"sleep {step.sleep:g}s"
    if step.backup is not None:
        return f"backup {', '.join(step.backup.sources) or 'all sources'}"
    if step.restore is not None:
        return f"restore {step.restore.snapshot} of {step.restore.source} into {step.restore.into}"
    if step.verify is not None:
        return f"verify {', '.join(step.verify.snapshots) or step.verify.source or 'all'}"
    if step.fault is not None:
        return fault.describe(step.fault)
    if step.approve is not None:
        return f"wait for {step.approvals} approval(s): {step.approve}"
    return step.kind
