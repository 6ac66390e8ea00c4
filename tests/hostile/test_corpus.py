"""Hostile configurations and playbooks through the real command line: each is refused with
exit 2 and one line naming the file and the key, no traceback, within 10 s and 500 MB.

The limits are enforced on each child process (RLIMIT_AS and a timeout, see `cli.py`): an
input that made the loader expand an alias bomb or read a FIFO forever fails by the limit.
The children run a few at a time (they are independent); each case is still its own test.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.hostile.cli import Run, assert_one_line_error, run_cli
from tests.hostile.corpus import (
    CONFIG,
    CONFIG_CASES,
    PLAYBOOK,
    PLAYBOOK_CASES,
    RUN_CASES,
    Case,
)

# ~150 child processes of ~1.2 processor-seconds each (interpreter and imports): minutes
# on a loaded two-core machine, hence the marker and the longer timeout
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
RUNNABLE = [c for c in PLAYBOOK_CASES if c.id in RUN_CASES]


def materialize(case: Case, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / name
    if case.make is not None:
        case.make(path, folder)
    elif isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        assert case.text is not None
        path.write_text(case.text)
    return path


def _check(folder: Path, case: Case) -> Run:
    materialize(case, folder, CONFIG)
    return run_cli(folder, "--config", CONFIG, "config", "check", *case.args)


def _validate(folder: Path, case: Case) -> Run:
    materialize(case, folder, PLAYBOOK)
    return run_cli(folder, "drill", "validate", PLAYBOOK, *case.args)


def _run(folder: Path, case: Case) -> Run:
    materialize(case, folder, PLAYBOOK)
    return run_cli(folder, "drill", "--state-dir", "state", "run", PLAYBOOK, "--yes", *case.args)


JOBS: list[tuple[str, Callable[[Path, Case], Run], list[Case]]] = [
    ("config", _check, CONFIG_CASES),
    ("validate", _validate, PLAYBOOK_CASES),
    ("run", _run, RUNNABLE),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Path, Run]]:
    """Every case of every corpus through the CLI, two children at a time."""
    base = tmp_path_factory.mktemp("hostile")
    work = [(kind, fn, case) for kind, fn, cases in JOBS for case in cases]

    def one(item: tuple[str, Callable[[Path, Case], Run], Case]) -> tuple[Path, Run]:
        kind, fn, case = item
        folder = base / kind / case.id
        return folder, fn(folder, case)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, work))
    return {(kind, case.id): res for (kind, _, case), res in zip(work, done, strict=True)}


def test_the_corpora_are_large_enough() -> None:
    """At least 60 hostile configurations and 40 hostile playbooks, each with its own name."""
    assert len(CONFIG_CASES) >= 60
    assert len(PLAYBOOK_CASES) >= 40
    assert len({c.id for c in CONFIG_CASES}) == len(CONFIG_CASES)
    assert len({c.id for c in PLAYBOOK_CASES}) == len(PLAYBOOK_CASES)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_check_refuses_hostile_configuration(
    case: Case, results: dict[tuple[str, str], tuple[Path, Run]]
) -> None:
    """`recoveryd config check` on a hostile configuration: exit 2, one line naming the file
    and the key, no traceback, bounded time and memory."""
    _, run = results[("config", case.id)]
    assert_one_line_error(run, *case.names)


@pytest.mark.parametrize("case", PLAYBOOK_CASES, ids=[c.id for c in PLAYBOOK_CASES])
def test_drill_validate_refuses_hostile_playbook(
    case: Case, results: dict[tuple[str, str], tuple[Path, Run]]
) -> None:
    """`recoveryd drill validate` on a hostile playbook: exit 2, one line naming the file and
    the key, no traceback, bounded time and memory."""
    _, run = results[("validate", case.id)]
    assert_one_line_error(run, *case.names)


@pytest.mark.parametrize("case", RUNNABLE, ids=[c.id for c in RUNNABLE])
def test_drill_run_refuses_hostile_playbook_before_running(
    case: Case, results: dict[tuple[str, str], tuple[Path, Run]]
) -> None:
    """`recoveryd drill run` refuses the same playbooks the same way, before any step runs
    (no drill journal is started)."""
    folder, run = results[("run", case.id)]
    assert_one_line_error(run, *case.names)
    assert not (folder / "state" / "drills").exists()
