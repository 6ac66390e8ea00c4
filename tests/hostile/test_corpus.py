"""Hostile configurations and playbooks through the real command line: each is refused with
exit 2 and one line naming the file and the key, no traceback, within 10 s and 500 MB.

The limits are enforced on each child process (RLIMIT_AS, RLIMIT_CPU and a timeout, see
`cli.py`): an input that made the loader expand an alias bomb or read a FIFO forever fails
by the limit. Every case runs in a child forked from an interpreter that imported the
command line once (`run_forked`: same process boundary, limits and exit status, without
~1.2 processor-seconds of start-up per case); `test_fresh_interpreter_*` runs a few of
them again as `python -m recoveryd` started from scratch. The children run two at a time
(they are independent); each case is still its own test.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.hostile.cli import Run, assert_one_line_error, run_cli, run_forked
from tests.hostile.corpus import (
    CONFIG,
    CONFIG_CASES,
    PLAYBOOK,
    PLAYBOOK_CASES,
    RUN_CASES,
    Case,
)

# ~150 child processes (the 50 MB inputs take seconds each): a minute or more on a loaded
# two-core machine, hence the marker and the longer timeout
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
RUNNABLE = [c for c in PLAYBOOK_CASES if c.id in RUN_CASES]
Runner = Callable[..., Run]
"""`runner(cwd, *args) -> Run`: one bounded run of the command line."""


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


def _check(run: Runner, folder: Path, case: Case) -> Run:
    materialize(case, folder, CONFIG)
    return run(folder, "--config", CONFIG, "config", "check", *case.args)


def _validate(run: Runner, folder: Path, case: Case) -> Run:
    materialize(case, folder, PLAYBOOK)
    return run(folder, "drill", "validate", PLAYBOOK, *case.args)


def _run(run: Runner, folder: Path, case: Case) -> Run:
    materialize(case, folder, PLAYBOOK)
    return run(folder, "drill", "--state-dir", "state", "run", PLAYBOOK, "--yes", *case.args)


JOBS: list[tuple[str, Callable[[Runner, Path, Case], Run], list[Case]]] = [
    ("config", _check, CONFIG_CASES),
    ("validate", _validate, PLAYBOOK_CASES),
    ("run", _run, RUNNABLE),
]


FRESH = [
    ("config", "alias-bomb"),
    ("config", "fifo"),
    ("validate", "deep-flow"),
    ("run", "var-typo"),
]
"""Cases also run in a fresh interpreter: an alias bomb (memory), a FIFO (blocks), and a
`drill validate` and a `drill run` refusal."""
Results = dict[tuple[str, str, bool], tuple[Path, Run]]
"""(kind, case id, fresh interpreter) -> (the case's folder, the run)."""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """Every case of every corpus through the CLI in forked children, and the FRESH ones in
    fresh interpreters too, two runs at a time."""
    base = tmp_path_factory.mktemp("hostile")
    work = [(kind, fn, case, False) for kind, fn, cases in JOBS for case in cases]
    work += [(k, fn, c, True) for k, fn, cases in JOBS for c in cases if (k, c.id) in FRESH]

    def one(item: tuple[str, Callable[[Runner, Path, Case], Run], Case, bool]) -> tuple[Path, Run]:
        kind, fn, case, fresh = item
        folder = base / ("fresh" if fresh else "forked") / kind / case.id
        return folder, fn(run_cli if fresh else run_forked, folder, case)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, work))
    return {
        (kind, case.id, fresh): res for (kind, _, case, fresh), res in zip(work, done, strict=True)
    }


def test_the_corpora_are_large_enough() -> None:
    """At least 60 hostile configurations and 40 hostile playbooks, each with its own name."""
    assert len(CONFIG_CASES) >= 60
    assert len(PLAYBOOK_CASES) >= 40
    assert len({c.id for c in CONFIG_CASES}) == len(CONFIG_CASES)
    assert len({c.id for c in PLAYBOOK_CASES}) == len(PLAYBOOK_CASES)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_check_refuses_hostile_configuration(case: Case, results: Results) -> None:
    """`recoveryd config check` on a hostile configuration: exit 2, one line naming the file
    and the key, no traceback, bounded time and memory."""
    _, run = results[("config", case.id, False)]
    assert_one_line_error(run, *case.names)


@pytest.mark.parametrize("case", PLAYBOOK_CASES, ids=[c.id for c in PLAYBOOK_CASES])
def test_drill_validate_refuses_hostile_playbook(case: Case, results: Results) -> None:
    """`recoveryd drill validate` on a hostile playbook: exit 2, one line naming the file and
    the key, no traceback, bounded time and memory."""
    _, run = results[("validate", case.id, False)]
    assert_one_line_error(run, *case.names)


@pytest.mark.parametrize("case", RUNNABLE, ids=[c.id for c in RUNNABLE])
def test_drill_run_refuses_hostile_playbook_before_running(case: Case, results: Results) -> None:
    """`recoveryd drill run` refuses the same playbooks the same way, before any step runs
    (no drill journal is started)."""
    folder, run = results[("run", case.id, False)]
    assert_one_line_error(run, *case.names)
    assert not (folder / "state" / "drills").exists()


@pytest.mark.parametrize(("kind", "case_id"), FRESH, ids=[f"{k}-{c}" for k, c in FRESH])
def test_fresh_interpreter_refuses_like_the_forked_child(
    kind: str, case_id: str, results: Results
) -> None:
    """`python -m recoveryd` started from scratch, as an operator's shell starts it, refuses
    the case with the same exit status and the same one line as the forked child, within
    10 s and 500 MB."""
    case = next(c for k, _, cases in JOBS if k == kind for c in cases if c.id == case_id)
    folder, fresh = results[(kind, case_id, True)]
    assert_one_line_error(fresh, *case.names)
    if kind == "run":
        assert not (folder / "state" / "drills").exists()
    forked_folder, forked = results[(kind, case_id, False)]
    assert (fresh.code, fresh.err.replace(str(folder), "")) == (
        forked.code,
        forked.err.replace(str(forked_folder), ""),
    )
