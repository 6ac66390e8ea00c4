"""Rules about the repository itself: the documented layers are the enforced ones, modules
stay small, and the documents cite only the repository."""

from __future__ import annotations

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
    """No "SPEC §" citation in src/ (help texts, docstrings), docs/ or README.md: the
    repository's own documents are the contract."""
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *SRC.rglob("*.py")]
    citing = [str(p.relative_to(ROOT)) for p in files if "SPEC §" in p.read_text()]
    assert citing == []
