"""`run` and `ssh` + `run`: a command from an argument list, locally or on a host.

Locally and over SSH the command gets its own session and process group, so a
timeout or an abort ends it and every process it started: TERM to the group,
KILL after a grace period. What that cleanup did (or why it failed) is added to
the step's output, so the journal keeps it. `shell: true` runs the string with
`/bin/sh -c` (values substituted into it were shell-quoted by the loader). Over
SSH the argument list is quoted once with `shlex.join` by `recoveryd.remote`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

from recoveryd.drills.expect import check_mapping, matches
from recoveryd.drills.steps.base import Outcome, Status, StepContext
from recoveryd.remote import SshProcess
from recoveryd.remote.runner import KILL_GRACE
from recoveryd.sources.base import CommandRunner, Process


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
            note = _stop_group(proc)
            out, err = proc.communicate()
            return None, out.decode(errors="replace") + note, err.decode(errors="replace"), why


CONNECTION_LOST = "the SSH connection was lost before the command ended"


_STOPPED: dict[str, Status] = {"aborted": "aborted", CONNECTION_LOST: "failed"}


def _stop_reason(
    cancel: threading.Event, deadline: float | None, timeout: float | None
) -> str | None:
    """Why a running command must stop now ("aborted", "timed out after …"), or None."""
    if cancel.is_set():
        return "aborted"
    if deadline is not None and time.monotonic() > deadline:
        return f"timed out after {timeout:g}s"
    return None


def _stop_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> str:
    """TERM to the command's process group, KILL after `grace`; what happened, as a line."""
    group = proc.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return f"\n[cleanup] process group {group} had already ended"
    except OSError as exc:
        return f"\n[cleanup] process group {group}: TERM failed: {exc.strerror}"
    deadline = time.monotonic() + grace
    while _group_alive(proc, group):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            return f"\n[cleanup] process group {group}: TERM, then KILL after {grace:g}s"
        time.sleep(0.05)
    return f"\n[cleanup] process group {group} ended after TERM"


def _group_alive(proc: subprocess.Popen[bytes], group: int) -> bool:
    proc.poll()  # reaps the leader, so that only live members count
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


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
            out = b"".join(chunks).decode(errors="replace")
            if status == -1 and isinstance(proc, SshProcess) and proc.connection_lost:
                out += f"\n[cleanup] {proc.stop_group()}"  # through a new connection
                return None, out, proc.stderr_text(), CONNECTION_LOST
            return status, out, proc.stderr_text(), None
        except TimeoutError:
            pass
        if why := _stop_reason(cancel, deadline, timeout):
            note = proc.stop_group() if isinstance(proc, SshProcess) else _kill(proc)
            reader.join(5)
            out = b"".join(chunks).decode(errors="replace") + f"\n[cleanup] {note}"
            return None, out, proc.stderr_text(), why


def _kill(proc: Process) -> str:
    proc.kill()
    return "the command was killed"


def validate_run(run: Sequence[str] | str) -> str | None:
    if not run:
        return "run is empty; give the program and its arguments"
    return None


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
        return Outcome(_STOPPED.get(why, "timeout"), output, why)
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
