"""A pre-started `python -m recoveryd` that forks one child per run (the hostile corpus).

Started once (`python tests/hostile/forkserver.py`), it imports the command line and
the modules `config check` and `drill validate|run` load, then waits for requests on
stdin, one JSON line each: `{"cwd", "argv", "env", "out", "err", "cpu", "memory",
"timeout"}`. For each it forks a child that, like a fresh `python -m recoveryd`
started by a shell, has its own process, its own working directory and environment,
stdin on /dev/null, stdout and stderr in files, and RLIMIT_AS / RLIMIT_CPU set before
anything of the run executes; the child runs `recoveryd/__main__.py` (`runpy`), so the
exit code is the one the interpreter would give (SystemExit, or 1 and a traceback on
stderr for an escaping exception). The server waits for the child up to `timeout`
wall-clock seconds (a child that blocks without computing is killed with SIGKILL) and
answers one JSON line: `{"status": N}` (exit code, or -SIGNAL as `subprocess` reports)
or `{"timeout": true}`.

What is saved: the interpreter's start and the imports, about 1.2 processor-seconds a
run. The limits apply to the child alone, which starts with no processor time used.
This file imports nothing from `tests` so that it runs as a plain script.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import runpy
import select
import signal
import sys
import traceback
from typing import Any

PRELOAD = (
    "recoveryd.cli.main",
    "recoveryd.cli.cmd_config",
    "recoveryd.cli.cmd_drill",
    "recoveryd.config",
    "recoveryd.drills",
)


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of an uncaught SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _child(req: dict[str, Any]) -> None:
    """In the forked child: become the run, then leave with its exit code (never returns)."""
    code = 1
    try:
        resource.setrlimit(resource.RLIMIT_AS, (req["memory"], req["memory"]))
        resource.setrlimit(resource.RLIMIT_CPU, (req["cpu"], req["cpu"]))
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        for fd, (path, flags) in enumerate(
            [
                (os.devnull, os.O_RDONLY),
                (req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                (req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            ]
        ):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        sys.stdin = os.fdopen(0, "r", closefd=False)  # not the request pipe's buffer
        sys.argv = ["recoveryd", *req["argv"]]
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


if __name__ == "__main__":
    serve()
