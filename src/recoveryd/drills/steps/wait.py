"""The `wait` kind: poll a probe (`run`, `sql`, `http` or `pressure`, with its `expect`)
every `interval` until it matches, or time out (default 60 s)."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from recoveryd.drills.steps import command, http, pressure, sql
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.http import HttpRequest
from recoveryd.drills.steps.schema import (
    Command,
    Expectation,
    KeyPath,
    Model,
    StepBase,
    StepKind,
)

DEFAULT_WAIT_TIMEOUT = 60.0
PROBE_ATTEMPT_TIMEOUT = 30.0
PROBE_ORDER = ("run", "sql", "http", "pressure")
_PROBES: tuple[StepKind[Any], ...] = (command.KIND, sql.KIND, http.KIND, pressure.KIND)


class Probe(Model):
    """What a `wait` step polls: any probe kind with its `expect`."""

    run: Command | None = None
    ssh: str | None = None
    shell: bool = False
    sql: str | None = None
    on: str | None = None
    engine: Literal["postgresql", "mysql", "sqlite"] | None = None
    password_file: str | None = None
    http: HttpRequest | None = None
    pressure: Literal["below critical", "below elevated"] | None = None
    expect: Expectation = None

    @model_validator(mode="after")
    def _explicit_shell(self) -> Probe:
        given = dict(zip(PROBE_ORDER, (self.run, self.sql, self.http, self.pressure), strict=True))
        present = [k for k, v in given.items() if v is not None]
        if not present:
            raise ValueError(
                "a wait step needs something to wait for: give run, sql, http or pressure"
            )
        if len(present) > 1:
            raise ValueError(f"a wait step polls one probe ({', '.join(present)}); keep one")
        if self.sql is not None and not self.on:
            raise ValueError("sql needs on: the DSN or database path to query")
        if isinstance(self.run, str) and not self.shell:
            raise ValueError(
                "run is a string; give an argument list, or write shell: true to use a shell"
            )
        return self


class WaitStep(StepBase):
    kind: ClassVar[str] = "wait"
    wait: Probe

    def host_refs(self) -> list[tuple[str, KeyPath]]:
        refs = super().host_refs()
        if self.wait.ssh:
            refs.append((self.wait.ssh, ("wait", "ssh")))
        return refs

    def expectations(self) -> list[tuple[Expectation, KeyPath]]:
        return [*super().expectations(), (self.wait.expect, ("wait", "expect"))]

    def http_requests(self) -> list[HttpRequest]:
        return [self.wait.http] if self.wait.http is not None else []


def probe_step(probe: Probe) -> tuple[StepKind[Any], StepBase] | None:
    """The probe as a step of its kind (already validated as a probe), or None without one."""
    fields = {k: v for k, v in probe if v is not None or k == "expect"}
    for kind in _PROBES:
        if kind.name in fields:
            keys = {k: v for k, v in fields.items() if k == kind.name or k not in _probe_keys()}
            return kind, kind.model.model_construct(name="probe", **keys)
    return None


def _probe_keys() -> set[str]:
    return {kind.name for kind in _PROBES}


def run_probe(probe: Probe, ctx: StepContext, timeout: float) -> Outcome:
    found = probe_step(probe)
    if found is None:
        return Outcome("failed", "", "a wait probe needs run, sql, http or pressure")
    kind, step = found
    return kind.run(step, ctx, timeout)


def describe_probe(probe: Probe) -> str:
    found = probe_step(probe)
    if found is None:
        return "probe"
    kind, step = found
    return kind.describe(step)


def run_wait(probe: Probe, ctx: StepContext, timeout: float, interval: float) -> Outcome:
    """Poll `probe` every `interval` until it matches; `timeout` status when it never does."""
    deadline = time.monotonic() + timeout
    attempts = 0
    last = Outcome("failed", "", "not tried")
    while True:
        attempts += 1
        left = max(0.5, deadline - time.monotonic())
        last = run_probe(probe, ctx, min(left, PROBE_ATTEMPT_TIMEOUT))
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


def run_step(step: WaitStep, ctx: StepContext, timeout: float | None) -> Outcome:
    return run_wait(step.wait, ctx, timeout or DEFAULT_WAIT_TIMEOUT, step.interval)


def describe_step(step: WaitStep) -> str:
    return f"wait until ({describe_probe(step.wait)}) matches {step.wait.expect!r}"


KIND = StepKind(WaitStep, run_step, describe_step)
