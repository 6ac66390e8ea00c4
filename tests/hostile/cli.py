"""Run the real command line on hostile input, bounded like an operator's shell would be.

Each run is a child process with its address space capped at 500 MB (RLIMIT_AS), its
processor time at 10 s (RLIMIT_CPU: the kernel kills it past that, however busy the
machine is) and a wall-clock timeout for a child that blocks without computing (a FIFO
read). An input that makes the product run away fails the test by a limit, not by a
timing assertion.

`run_cli` starts a fresh interpreter (`python -m recoveryd`) per run; `run_forked` forks
the same child from an interpreter that imported the command line once (tests/forkcli.py:
its own process, working directory and environment, the limits set before the run
starts, the exit status seen by waitpid). A forked child gets 9 processor-seconds, not
10: a fresh interpreter spends about one of its 10 on start-up, so the bound is no looser.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.forkcli import cli_pool

MEMORY_LIMIT = 500 * 1024 * 1024
"""Address space of one run: 500 MB."""
CPU_LIMIT = 10
"""Processor seconds one run may use before the kernel kills it."""
FORKED_CPU_LIMIT = CPU_LIMIT - 1
"""Processor seconds of a forked run: the limit less the interpreter's start-up (about
1.2 s unloaded), which a fresh `python -m recoveryd` spends inside its limit."""
TIME_LIMIT = 60.0
"""Wall-clock seconds before a run that blocks (and so uses no processor time) is killed;
generous because a loaded machine stretches the start-up of a healthy run."""


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def _env(cwd: Path) -> dict[str, str]:
    """The environment of a run: no RECOVERYD_ variables, HOME in `cwd`, unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERYD_") or k == "HOME"}
    return {**env, "PYTHONUNBUFFERED": "1", "HOME": str(cwd)}


def _killed(args: tuple[str, ...]) -> Run:
    return Run(-9, "", f"killed after {TIME_LIMIT:.0f} s: {' '.join(args)}")


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT))


def run_cli(cwd: Path, *args: str) -> Run:
    """`recoveryd ARGS...` in `cwd` under the memory and time limits, in a fresh interpreter."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "recoveryd", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIME_LIMIT,
            preexec_fn=_limit,
            env=_env(cwd),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _killed(args)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_forked(cwd: Path, *args: str) -> Run:
    """`recoveryd ARGS...` in `cwd` under the memory and time limits, in a forked child."""
    ran = cli_pool().run(
        cwd,
        list(args),
        env=_env(cwd),
        timeout=TIME_LIMIT,
        cpu=FORKED_CPU_LIMIT,
        memory=MEMORY_LIMIT,
        errors="replace",
    )
    return _killed(args) if ran is None else Run(ran.code, ran.out, ran.err)


def assert_one_line_error(run: Run, *names: str) -> None:
    """Exit 2 and exactly one line on stderr, `recoveryd: ...`, naming each of `names`;
    no traceback."""
    assert "Traceback" not in run.err, run.err
    lines = run.err.strip().splitlines()
    assert run.code == 2, (run.code, run.err)
    assert len(lines) == 1, run.err
    assert lines[0].startswith("recoveryd: "), run.err
    assert "unexpected" not in lines[0], run.err
    for name in names:
        assert name in lines[0], (name, run.err)
