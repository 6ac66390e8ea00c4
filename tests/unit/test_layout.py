"""Rules about the repository itself: the documented layers are the enforced ones."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
