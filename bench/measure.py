"""Measuring one command of a benchmark: wall time, CPU of its process tree, peak RSS of the
tree, and the CPU that long-running servers (the database, the object store) spent meanwhile.

CPU of the tree comes from `getrusage(RUSAGE_CHILDREN)` around the command (every process
of the tree is waited for, so its time is counted when it exits); peak RSS is the largest
sum of the tree's resident sets, sampled every 50 ms with psutil. A server's CPU is read
from /proc (psutil) for its processes, their live children and their waited-for children.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

MiB = 1024**2


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            total += int(proc.memory_info().rss)
        except psutil.Error:
            continue
    return total


class TreeRss:
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.peak = 0
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self._root))
            self._stop.wait(self._interval)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return round(self.peak / MiB, 1)


def server_cpu(pids: Sequence[int]) -> float:
    """CPU seconds spent so far by these server processes, their live children and the
    children they have waited for (PostgreSQL backends that exited)."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
            for child in proc.children(recursive=True):
                try:
                    c = child.cpu_times()
                    total += c.user + c.system
                except psutil.Error:
                    continue
        except psutil.Error:
            continue
    return total


def _clients_of(pids: Sequence[int]) -> list[psutil.Process]:
    """The client backends (a connection's process: `... 127.0.0.1(PORT) ...` or `[local]`)
    among the children of these PostgreSQL postmasters."""
    found = []
    for pid in pids:
        try:
            children = psutil.Process(pid).children()
        except psutil.Error:
            continue
        for child in children:
            try:
                line = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "127.0.0.1(" in line or "[local]" in line:
                found.append(child)
    return found


def settle_database(pids: Sequence[int], timeout: float = 10) -> None:
    """Wait until the client backends of a finished command have exited and been reaped, so
    that their CPU time is in the postmaster's children time when it is read."""
    psutil.wait_procs(_clients_of(pids), timeout=timeout)
    deadline = time.monotonic() + timeout
    while _clients_of(pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@dataclass(frozen=True)
class Servers:
    """The pids of the long-running servers whose CPU is reported separately."""

    database: tuple[int, ...]
    store: tuple[int, ...]


class CommandFailedError(RuntimeError):
    """A measured command exited non-zero; the message carries its stderr's tail."""


def measured(
    argv: Sequence[str] | str,
    servers: Servers,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600,
) -> tuple[dict[str, float], str]:
    """Run `argv` (a string is a shell pipeline, run with bash -o pipefail) and measure it.

    Returns ({wall_s, cpu_s, peak_rss_mib, db_cpu_s, store_cpu_s, loadavg_1m}, stdout);
    raises CommandFailedError when it fails."""
    shell = isinstance(argv, str)
    cmd: list[str] = ["bash", "-o", "pipefail", "-c", argv] if isinstance(argv, str) else [*argv]
    full_env = {**os.environ, **(env or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    db0, st0 = server_cpu(servers.database), server_cpu(servers.store)
    began = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, text=True
    )
    rss = TreeRss(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        peak = rss.stop()
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    settle_database(servers.database)
    if proc.returncode != 0:
        what = argv if shell else " ".join(cmd[:3])
        raise CommandFailedError(f"{str(what)[:200]} exited {proc.returncode}: {err[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": peak,
        "db_cpu_s": round(server_cpu(servers.database) - db0, 2),
        "store_cpu_s": round(server_cpu(servers.store) - st0, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }, out
