"""Helpers for drill tests: write playbooks, run the CLI, read journals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.forkcli import run_recoveryd

REPO = Path(__file__).resolve().parents[3]


def write_playbook(directory: Path, body: str, name: str = "pb.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def watched_playbook(directory: Path, head: str, steps: str) -> Path:
    """A playbook (`head`, then `steps`) with a stop condition watching the file `healthy`
    in `directory`, created here: a step that removes it trips the condition."""
    flag = directory / "healthy"
    flag.write_text("")
    watch = f"""\
stop_conditions:
  - {{name: service healthy, run: [test, -e, "{flag}"], interval: 50ms}}
"""
    return write_playbook(directory, head + watch + textwrap.dedent(steps))


def cli(
    *args: str, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run `recoveryd ARGS` as a child process and capture its output: forked from the
    session's pre-started interpreter (tests/forkcli.py), or, given other `subprocess.run`
    arguments, a fresh `python -m recoveryd`."""
    if not kw:
        return run_recoveryd(list(args), cwd=REPO, env=env, timeout=300)
    return subprocess.run(
        [sys.executable, "-m", "recoveryd", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
        **kw,
    )


def cli_popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "recoveryd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records(path: Path, type_: str) -> list[dict[str, Any]]:
    return [r for r in journal(path) if r["type"] == type_]


def only_journal(state_dir: Path) -> Path:
    found = sorted((state_dir / "drills").glob("*/journal.jsonl"))
    assert len(found) == 1, found
    return found[0]
