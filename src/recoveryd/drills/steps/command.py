"""The `run` kind (with `ssh`): a command from an argument list, locally or on a host.

Locally the command gets its own process group, so a timeout or an abort
kills it and its children. `shell: true` runs the string with `/bin/sh -c`
(values substituted into it were shell-quoted by the loader). Over SSH the
argument list is quoted once with `shlex.join` by `recoveryd.remote`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

from pydantic import model_validator

from recoveryd.drills.expect import check_mapping, matches
from recoveryd.drills.steps.base import DEFAULT_TIMEOUT, Outcome, StepContext
from recoveryd.drills.steps.schema import Command, StepBase, StepKind
from recoveryd.sources.base import CommandRunner


def argv_of(run: Sequence[str] | str, shell: bool) -> list[str]:
    if isinstance(run, str):
        return ["/bin/sh", "-c", run]
    return ["/bin/sh", "-c", " ".join(run)] if shell else list(run)


def run_local(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    timeout: float | None,
    cancel: threading.Event,
) -> tuple[int | None, str, str, str | None]:
    """(exit status or None, stdout, stderr, why it stopped early or None)."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    except OSError as exc:
        return None, "", "", f"cannot start {argv[0]}: {exc.strerror}"
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=0.1)
            return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), None
        except subprocess.TimeoutExpired:
            pass
        if why := _stop_reason(cancel, deadline, timeout):
            _kill_group(proc)
            out, err = proc.communicate()
            return None, out.decode(errors="replace"), err.decode(errors="replace"), why


def _stop_reason(
    cancel: threading.Event, deadline: float | None, timeout: float | None
) -> str | None:
    """Why a running command must stop now ("aborted", "timed out after …"), or None."""
    if cancel.is_set():
        return "aborted"
    if deadline is not None and time.monotonic() > deadline:
        return f"timed out after {timeout:g}s"
    return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_remote(
    runner: CommandRunner,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    timeout: float | None,
    cancel: threading.Event,
) -> tuple[int | None, str, str, str | None]:
    """Same contract as `run_local`, over a CommandRunner (SSH)."""
    proc = runner.start(argv, env=env)
    chunks: list[bytes] = []

    def pump() -> None:
        try:
            while chunk := proc.read(65536):
                chunks.append(chunk)
        except (OSError, TimeoutError):
            return

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            status = proc.wait(0.1)
            reader.join(5)
            return status, b"".join(chunks).decode(errors="replace"), proc.stderr_text(), None
        except TimeoutError:
            pass
        if why := _stop_reason(cancel, deadline, timeout):
            proc.kill()
            return None, b"".join(chunks).decode(errors="replace"), proc.stderr_text(), why


def run_run(
    ctx: StepContext,
    *,
    run: Sequence[str] | str,
    shell: bool,
    ssh: str | None,
    env: Mapping[str, str],
    expect: object,
    timeout: float | None,
) -> Outcome:
    """Run the command; success is exit 0, or `expect` matched against stdout / fields."""
    argv = argv_of(run, shell)
    if ssh is None:
        status, out, err, why = run_local(argv, env=env, timeout=timeout, cancel=ctx.cancel)
    else:
        runner = ctx.runners.for_host(ssh)
        status, out, err, why = run_remote(
            runner, argv, env=env, timeout=timeout, cancel=ctx.cancel
        )
    output = out + (f"\n[stderr]\n{err}" if err.strip() else "")
    if why is not None:
        return Outcome("aborted" if why == "aborted" else "timeout", output, why)
    if isinstance(expect, dict):
        verdict = check_mapping(expect, {"exit": str(status), "stdout": out, "stderr": err})
        return Outcome("ok", output) if verdict.ok else Outcome("failed", output, verdict.detail)
    if status != 0:
        tail = err.strip().splitlines()[-1:] or [""]
        return Outcome("failed", output, f"exit status {status}: {tail[0]}".rstrip(": "))
    if expect is not None:
        verdict = matches(expect, out)
        if not verdict.ok:
            return Outcome("failed", output, verdict.detail)
    return Outcome("ok", output)


class RunStep(StepBase):
    kind: ClassVar[str] = "run"
    run: Command

    @model_validator(mode="after")
    def _explicit_shell(self) -> RunStep:
        if isinstance(self.run, str) and not self.shell:
            raise ValueError(
                "run is a string; give an argument list, or write shell: true to use a shell"
            )
        return self


def run_step(step: RunStep, ctx: StepContext, timeout: float | None) -> Outcome:
    return run_run(
        ctx,
        run=step.run,
        shell=step.shell,
        ssh=step.ssh,
        env=step.env,
        expect=step.expect,
        timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
    )


def describe_step(step: RunStep) -> str:
    cmd = step.run if isinstance(step.run, str) else shlex.join(step.run)
    where = f"on {step.ssh}: " if step.ssh else "locally: "
    return where + (f"sh -c {shlex.quote(cmd)}" if step.shell else cmd)


KIND = StepKind(RunStep, run_step, describe_step, probe=True)
