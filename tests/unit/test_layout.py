"""Rules about the repository itself: the documented layers are the enforced ones, modules
stay small, and the documents cite only the repository."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "recoveryd"
MAX_LINES = 500
STILL_LONG: set[str] = set()
"""Modules known to be over the limit, each to be split; an entry goes once it is."""


def _layers_contract() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    return [[m.strip().removeprefix("recoveryd.") for m in row.split("|")] for row in layers]


def _architecture_rows() -> list[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    table = text.split("## Layers", 1)[1].split("\n\n")[2]
    return [line for line in table.splitlines()[2:] if line.startswith("|")]


def test_architecture_shows_the_layers_of_the_contract() -> None:
    """docs/ARCHITECTURE.md's layer table has one row per layer of the import-linter contract,
    in the same order, naming exactly that layer's packages; the core comes last."""
    layers = _layers_contract()
    rows = _architecture_rows()
    assert len(rows) == len(layers) + 1, rows
    for packages, row in zip(layers, rows, strict=False):
        cells = re.split(r"(?<!\\)\|", row)  # `\|` inside a cell separates siblings
        named = re.findall(r"`(\w+)/`", cells[2])
        assert named == packages, (row, packages)
    assert rows[-1].startswith("| core |")


def test_no_module_is_longer_than_500_lines() -> None:
    """Every module under src/ has at most 500 lines (but those of STILL_LONG, which must
    still be over: a module split leaves the list)."""
    long = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if len(path.read_text().splitlines()) > MAX_LINES
    }
    assert long == STILL_LONG


def test_documents_cite_nothing_outside_the_repository() -> None:
    """No "SPEC §" citation in src/ (help texts, docstrings), tests/ (docstrings), docs/,
    README.md or the shipped playbooks and their files: the repository's own documents
    are the contract."""
    files = [
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *SRC.rglob("*.py"),
        *(p for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__)),
        *(p for p in (ROOT / "playbooks").rglob("*") if p.is_file()),
    ]
    citing = [str(p.relative_to(ROOT)) for p in files if "SPEC §" in p.read_text()]
    assert citing == []


THIRD_PARTY_GETATTR = {
    ("yamlbound.py", "event, 'tag'"),  # a PyYAML parser event: only some kinds have a tag
    ("stores/s3_settings.py", "exc, 'response'"),  # a botocore error
    ("daemon/schedule.py", "self._sched, '_thread'"),  # APScheduler's scheduler thread
    ("daemon/schedule.py", "job, 'next_run_time'"),  # an APScheduler job (unset before start)
    ("daemon/notify.py", "exc, 'reason'"),  # a urllib error: only URLError has a reason
    ("drills/steps/http.py", "exc, 'reason'"),  # the same
    ("observe.py", "stream, 'isatty'"),  # any text stream handed to logging
    ("observe.py", "sys, self._which"),  # sys.stdout or sys.stderr, read when written to
    ("cli/main.py", "args, 'func'"),  # an argparse namespace
    ("audit.py", "args, 'command'"),  # the same
    ("audit.py", "args, f'{name}_command'"),  # the same
    ("drills/steps/fault.py", "signal, f'SIG{fault.signal}'"),  # the signal module
    ("sources/confined_tar.py", "tarfile, 'data_filter'"),  # absent before Python 3.11.4
}
"""Where `getattr`/`hasattr` read something the project does not define, with why."""


def _getattr_calls() -> set[tuple[str, str]]:
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
            ):
                args = ", ".join(ast.unparse(a) for a in node.args[:2])
                found.add((str(path.relative_to(SRC)), args))
    return found


def test_getattr_reads_only_third_party_objects() -> None:
    """`getattr`/`hasattr` appear in src/ only where they read an object of a library or
    of the standard library (THIRD_PARTY_GETATTR, each with its reason): the project's own
    types are read through typed attributes, so mypy checks every access."""
    assert _getattr_calls() == THIRD_PARTY_GETATTR
