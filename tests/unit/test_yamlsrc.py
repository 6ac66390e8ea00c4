"""YAML documents remember lines, so every configuration error names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from recoveryd.errors import ConfigError
from recoveryd.yamlsrc import format_key_path, load, loads


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    servers: dict[str, _Inner]


def test_key_paths_read_like_the_file() -> None:
    """Key paths are dotted, list indexes in brackets."""
    assert (
        format_key_path(("sources", "population", "targets", 1)) == "sources.population.targets[1]"
    )


def test_lines_of_nested_keys_are_known() -> None:
    """Each key path maps to the line it was written on."""
    doc = loads("a:\n  b:\n    - x\n    - y\n", source="f.yaml")
    assert doc.line_of(("a", "b", 1)) == 4
    assert doc.line_of(("a", "b")) == 2


def test_validation_error_names_line_and_key() -> None:
    """A wrong type is reported at its own line and key path."""
    doc = loads("servers:\n  one:\n    port: 1\n  two:\n    port: many\n", source="c.yaml")
    with pytest.raises(ConfigError, match=r"^c\.yaml:5: servers\.two\.port: .*many"):
        doc.validate(_Outer)


def test_unknown_key_is_an_error_at_its_line() -> None:
    """Unknown keys are errors naming the key (typos do not pass silently)."""
    doc = loads("servers:\n  one:\n    port: 1\n    prot: 2\n", source="c.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml:4: servers\.one\.prot: unknown key"):
        doc.validate(_Outer)


def test_duplicate_keys_are_refused() -> None:
    """A key written twice is an error, not a silent override."""
    with pytest.raises(ConfigError, match=r"c\.yaml:3: a: duplicate key"):
        loads("a: 1\nb: 2\na: 3\n", source="c.yaml")


def test_invalid_yaml_names_the_line() -> None:
    """Broken YAML syntax is reported with its line."""
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: (\S+: )?invalid YAML"):
        loads("a: [1, 2\nb: 3\n", source="c.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file is a one-line ConfigError naming the path."""
    with pytest.raises(ConfigError, match=r"nope\.yaml: configuration file not found"):
        load(tmp_path / "nope.yaml", what="configuration file")


def test_python_tags_never_build_objects(tmp_path: Path) -> None:
    """A YAML tag asking for a Python call executes nothing: it is refused, naming the key."""
    marker = tmp_path / "ran"
    with pytest.raises(ConfigError, match=r"^c\.yaml:1: a: YAML tags .* are not accepted"):
        loads(f"a: !!python/object/apply:os.system ['touch {marker}']\n", source="c.yaml")
    assert not marker.exists()
