"""The `fault` kind: built-in faults, each returning its automatic undo.

- `stop_process`: SIGSTOP to the process (by `pid_file` or exact `process`
  name); undo: SIGCONT.
- `kill_process`: `signal` (TERM by default), then wait until it is gone;
  undo: run `restart` (locally, or over `ssh`) when given.
- `block_port`: a squatter listens on `address:port` and closes every
  connection at once (the service cannot bind it back); undo: close it.
  With `iptables` on PATH, a REJECT rule is inserted instead.
- `fill_disk`: a file in `path` grows until the filesystem is `level`
  percent full; undo: delete it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from recoveryd.configtypes import HostName, Text
from recoveryd.drills.steps.base import DEFAULT_TIMEOUT, Outcome, StepContext
from recoveryd.drills.steps.command import run_local, run_remote
from recoveryd.drills.steps.schema import Argv, KeyPath, Model, StepBase, StepKind

FAULT_TIMEOUT = 60.0  # at most, whatever the step's timeout: a fault is quick or it failed


class Fault(Model):
    """A built-in fault with its automatic undo.

    - `stop_process`: SIGSTOP (frozen, undo: SIGCONT);
    - `kill_process`: `signal` (default TERM; undo: run `restart` if given);
    - `block_port`: a listening squatter on a free port (undo: close it);
    - `fill_disk`: a file filling the filesystem of `path` to `level` percent (undo: delete).
    """

    action: Literal["stop_process", "kill_process", "block_port", "fill_disk"]
    pid_file: Text | None = None
    process: Text | None = None  # exact process name (comm), when no pid_file
    signal: Literal["TERM", "KILL", "INT", "HUP", "QUIT"] = "TERM"
    restart: Argv | None = None
    ssh: str | None = None  # where `restart` runs; local when absent
    port: int | None = Field(default=None, ge=1, le=65535)
    address: HostName = "127.0.0.1"
    path: Text | None = None
    level: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _needs(self) -> Fault:
        if self.action in ("stop_process", "kill_process") and not (self.pid_file or self.process):
            raise ValueError(f"{self.action} needs pid_file or process")
        if self.action == "block_port" and self.port is None:
            raise ValueError("block_port needs port")
        if self.action == "fill_disk" and (self.path is None or self.level is None):
            raise ValueError("fill_disk needs path (a directory) and level (percent)")
        return self


class FaultStep(StepBase):
    kind: ClassVar[str] = "fault"
    fault: Fault

    @property
    def is_destructive(self) -> bool:
        return True

    def host_refs(self) -> list[tuple[str, KeyPath]]:
        refs = super().host_refs()
        if self.fault.ssh:
            refs.append((self.fault.ssh, ("fault", "ssh")))
        return refs


def find_pids(fault: Fault, ctx: StepContext) -> list[int]:
    if fault.pid_file:
        try:
            first = ctx.resolve(fault.pid_file).read_text().split()
            return [int(first[0])] if first else []
        except (OSError, ValueError):
            return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == fault.process:
                    pids.append(int(entry.name))
    return sorted(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def run_fault(ctx: StepContext, fault: Fault, timeout: float) -> Outcome:
    if fault.action == "stop_process":
        return _stop(ctx, fault)
    if fault.action == "kill_process":
        return _kill(ctx, fault, timeout)
    if fault.action == "block_port":
        return _block(fault)
    return _fill(ctx, fault)


def describe(fault: Fault) -> str:
    """What the fault does, in a few words."""
    what = fault.pid_file or fault.process or ""
    return {
        "stop_process": f"freeze process {what} (SIGSTOP)",
        "kill_process": f"send SIG{fault.signal} to process {what}",
        "block_port": f"block port {fault.address}:{fault.port}",
        "fill_disk": f"fill the filesystem of {fault.path} to {fault.level}%",
    }[fault.action]


def _stop(ctx: StepContext, fault: Fault) -> Outcome:
    pids = find_pids(fault, ctx)
    if not pids:
        return Outcome("failed", "", f"no process found for {fault.pid_file or fault.process}")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)

    def undo() -> Outcome:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return Outcome("ok", f"resumed {pids}")

    return Outcome("ok", f"stopped {pids}", undo=undo)


def _kill(ctx: StepContext, fault: Fault, timeout: float) -> Outcome:
    pids = find_pids(fault, ctx)
    if not pids:
        return Outcome("failed", "", f"no process found for {fault.pid_file or fault.process}")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, getattr(signal, f"SIG{fault.signal}"))
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline or ctx.cancel.wait(0.05):
            return Outcome(
                "failed", "", f"process(es) {pids} still running", undo=_restart(ctx, fault)
            )
    return Outcome("ok", f"killed {pids}", undo=_restart(ctx, fault))


def _restart(ctx: StepContext, fault: Fault) -> Callable[[], Outcome] | None:
    if not fault.restart:
        return None
    argv = list(fault.restart)

    def undo() -> Outcome:
        never = threading.Event()
        if fault.ssh:
            runner = ctx.runners.for_host(fault.ssh)
            status, out, err, why = run_remote(runner, argv, env=None, timeout=120, cancel=never)
        else:
            status, out, err, why = run_local(argv, env=None, timeout=120, cancel=never)
        if status == 0:
            return Outcome("ok", out)
        return Outcome("failed", out + err, why or f"restart exited with status {status}")

    return undo


def _block(fault: Fault) -> Outcome:
    port = int(fault.port or 0)
    iptables = shutil.which("iptables")
    if iptables:
        rule = ["INPUT", "-p", "tcp", "-d", fault.address, "--dport", str(port), "-j", "REJECT"]
        done = subprocess.run([iptables, "-I", *rule], capture_output=True, check=False)
        if done.returncode == 0:

            def undo_rule() -> Outcome:
                subprocess.run([iptables, "-D", *rule], capture_output=True, check=False)
                return Outcome("ok", "rule removed")

            return Outcome("ok", f"iptables REJECT {fault.address}:{port}", undo=undo_rule)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((fault.address, port))
    except OSError as exc:
        sock.close()
        return Outcome("failed", "", f"cannot take {fault.address}:{port}: {exc.strerror}")
    sock.listen(64)
    sock.settimeout(0.2)
    stop = threading.Event()

    def squat() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=squat, daemon=True, name=f"squatter-{port}")
    thread.start()

    def undo() -> Outcome:
        stop.set()
        thread.join(2)
        sock.close()
        return Outcome("ok", f"released {fault.address}:{port}")

    return Outcome("ok", f"squatting {fault.address}:{port}", undo=undo)


def _fill(ctx: StepContext, fault: Fault) -> Outcome:
    directory = ctx.resolve(str(fault.path))
    target = directory / f".recoveryd-fill-{os.getpid()}"
    usage = shutil.disk_usage(directory)
    want = int(usage.total * float(fault.level or 0) / 100)
    need = want - usage.used
    if need > 0:
        try:
            with target.open("wb") as fh:
                os.posix_fallocate(fh.fileno(), 0, need)
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink()
            return Outcome("failed", "", f"cannot fill {directory}: {exc.strerror}")

    def undo() -> Outcome:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        return Outcome("ok", f"removed {target}")

    used = shutil.disk_usage(directory)
    pct = 100.0 * used.used / used.total
    return Outcome("ok", f"{directory} at {pct:.1f}% ({max(need, 0)} bytes added)", undo=undo)


def run_step(step: FaultStep, ctx: StepContext, timeout: float | None) -> Outcome:
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    return run_fault(ctx, step.fault, min(limit, FAULT_TIMEOUT))


def describe_step(step: FaultStep) -> str:
    return describe(step.fault)


KIND = StepKind(FaultStep, run_step, describe_step)
