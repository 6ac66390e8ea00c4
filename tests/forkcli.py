"""`python -m recoveryd` as a child process, without paying the interpreter's start-up each time.

A `ForkServer` is one interpreter (this file run as a script) that imported the command
line once and forks a child per run. The child is what a shell would start: its own
process, working directory, environment and `sys.path[0]`, stdin on /dev/null, stdout
and stderr in files, optional RLIMIT_AS / RLIMIT_CPU set before anything of the run
executes, optionally another OS user (after the imports, as a root process would drop
privileges), and `recoveryd/__main__.py` run by `runpy`, so the exit status (seen by
waitpid) is the one the interpreter would give: SystemExit's code, or 1 and a traceback
on stderr for an escaping exception, -N for a signal. A child that outlives the timeout
(wall clock) is killed with SIGKILL. What is saved: about 1.2 processor-seconds of
imports per run (several wall-clock seconds on a loaded machine).

`ForkPool` lends a free server to each caller (one more is started when all are busy), so
threads can run the command line at the same time. `cli_pool()` is the pool of the test
session, stopped at exit. Tests that need the real start-up of a fresh interpreter (signals
sent to it, `python -m recoveryd` as such) keep starting it with `subprocess`.

The server half imports only the standard library and `recoveryd`, never `tests`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import resource
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRELOAD = (
    "recoveryd.cli.main",
    "recoveryd.config",
    "recoveryd.drills.api",
)
"""Imported by the server before it forks (the command line and its heaviest paths)."""
UNLIMITED = resource.RLIM_INFINITY


# -- the server (this file run as a script) ---------------------------------------------


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of an uncaught SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _become(req: dict[str, Any]) -> None:
    """Limits, working directory, environment and standard streams of the run."""
    resource.setrlimit(resource.RLIMIT_AS, (req["memory"], req["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (req["cpu"], req["cpu"]))
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    tempfile.tempdir = None  # read TMPDIR again, as a fresh interpreter would
    streams = [
        (os.devnull, os.O_RDONLY),
        (req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ]
    for fd, (path, flags) in enumerate(streams):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = os.fdopen(0, "r", closefd=False)  # not the request pipe's read-ahead
    sys.argv = ["recoveryd", *req["argv"]]
    sys.path[0] = os.getcwd()  # what `python -m` puts first
    if req.get("user"):  # last: the streams were opened as root
        user = pwd.getpwnam(req["user"])
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)


def _child(req: dict[str, Any]) -> None:
    """In the forked child: become the run, then leave with its exit code (never returns)."""
    code = 1
    try:
        _become(req)
        try:
            runpy.run_module("recoveryd", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:  # noqa: BLE001 - what the interpreter does with it
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _wait(pid: int, timeout: float) -> dict[str, Any]:
    """The child's end, or SIGKILL after `timeout` wall-clock seconds."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timeout": True}
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    if os.WIFSIGNALED(status):
        return {"status": -os.WTERMSIG(status)}
    return {"status": os.waitstatus_to_exitcode(status)}


def serve() -> None:
    """Import, say "ready", then one forked run per request line until stdin closes."""
    for name in PRELOAD:
        __import__(name)
    from recoveryd.cli.main import build_parser

    build_parser()  # every command module, as a run that parses with all of them
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing but answers on the pipe
    answer.write("ready\n")
    answer.flush()
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        answer.write(json.dumps(_wait(pid, req["timeout"])) + "\n")
        answer.flush()


# -- the client (in the test process) ----------------------------------------------------


@dataclass(frozen=True)
class Ran:
    """A finished run: its exit status (-N: killed by signal N), stdout and stderr."""

    code: int
    out: str
    err: str


class ForkServer:
    """One pre-started interpreter that forks a child per `run`, one run at a time."""

    def __init__(self, scratch: Path) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self._scratch = scratch
        self._count = 0
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=scratch,
            start_new_session=True,  # its own process group: `kill` takes its children too
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        ready = self._stdout.readline()
        assert ready == "ready\n", f"the fork server did not start: {ready!r}"

    def run(
        self,
        cwd: Path,
        args: list[str],
        *,
        env: dict[str, str],
        timeout: float,
        cpu: int = UNLIMITED,
        memory: int = UNLIMITED,
        errors: str = "strict",
        user: str | None = None,
    ) -> Ran | None:
        """`recoveryd ARGS...` in `cwd` with exactly `env` (as OS user `user`, when given:
        the imports were made as root); None when killed at `timeout`."""
        self._count += 1
        out = self._scratch / f"{self._count}.out"
        err = self._scratch / f"{self._count}.err"
        req = {
            "cwd": str(cwd),
            "argv": args,
            "env": {**env, "PYTHONUNBUFFERED": env.get("PYTHONUNBUFFERED", "1")},
            "out": str(out),
            "err": str(err),
            "cpu": cpu,
            "memory": memory,
            "timeout": timeout,
            "user": user,
        }
        self._stdin.write(json.dumps(req) + "\n")
        self._stdin.flush()
        answer = json.loads(self._stdout.readline())
        try:
            if answer.get("timeout"):
                return None
            return Ran(
                int(answer["status"]), out.read_text(errors=errors), err.read_text(errors=errors)
            )
        finally:
            out.unlink(missing_ok=True)
            err.unlink(missing_ok=True)

    def close(self) -> None:
        self._stdin.close()
        self._proc.wait(60)
        self._stdout.close()

    def kill(self) -> None:
        """Stop the server and its running child at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._stdin.close()
        self._stdout.close()


class ForkPool:
    """Fork servers lent one caller at a time; another is started when all are busy."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._lock = threading.Lock()
        self._free: list[ForkServer] = []
        self._all: list[ForkServer] = []
        self._started = 0

    def _take(self) -> ForkServer:
        with self._lock:
            if self._free:
                return self._free.pop()
            self._started += 1
            n = self._started
        server = ForkServer(self._scratch / str(n))
        with self._lock:
            self._all.append(server)
        return server

    def run(self, cwd: Path, args: list[str], **kw: Any) -> Ran | None:
        """`ForkServer.run` on a free server."""
        server = self._take()
        try:
            ran = server.run(cwd, args, **kw)
        except BaseException:  # interrupted mid-request (a test's timeout): its answer is owed
            with self._lock:
                self._all.remove(server)
            server.kill()
            raise
        with self._lock:
            self._free.append(server)
        return ran

    def close(self) -> None:
        with self._lock:
            servers, self._all, self._free = self._all, [], []
        for server in servers:
            server.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


_POOL: ForkPool | None = None
_POOL_LOCK = threading.Lock()


def cli_pool() -> ForkPool:
    """The session's pool (started on first use, stopped when the test process exits)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ForkPool(Path(tempfile.mkdtemp(prefix="recoveryd-forkcli-")))
            atexit.register(_POOL.close)
        return _POOL


def run_recoveryd(
    args: list[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([python, -m, recoveryd, *args], capture_output=True, text=True)`
    through the session's pool: `env` is added to this process's environment; the timeout
    raises `subprocess.TimeoutExpired` as `subprocess.run` does."""
    argv = [sys.executable, "-m", "recoveryd", *args]
    ran = cli_pool().run(
        cwd or Path.cwd(), list(args), env={**os.environ, **(env or {})}, timeout=timeout
    )
    if ran is None:
        raise subprocess.TimeoutExpired(argv, timeout)
    return subprocess.CompletedProcess(argv, ran.code, ran.out, ran.err)


def run_argv(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True)` for an `argv` that starts
    `python -m recoveryd` or a `recoveryd` executable, run through the session's pool. For
    commands that do not write their own command line anywhere (`restore --time` writes
    it into PostgreSQL's restore_command: run that one as it is)."""
    args = list(argv)
    if args[:3] == [sys.executable, "-m", "recoveryd"]:
        rest = args[3:]
    elif Path(args[0]).name == "recoveryd":
        rest = args[1:]
    else:
        raise ValueError(f"not a recoveryd command line: {args[:3]}")
    return run_recoveryd(rest, env=env, timeout=timeout)


if __name__ == "__main__":
    serve()
