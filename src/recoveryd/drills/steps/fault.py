"""`fault`: built-in faults, each returning its automatic undo.

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

from recoveryd.drills.models import Fault
from recoveryd.drills.steps.base import Outcome, StepContext
from recoveryd.drills.steps.command import run_local, run_remote


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
