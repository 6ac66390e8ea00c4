"""Variables given to a playbook (`--var`, a drill's `vars`) must be ones it knows: a typo is
refused naming the declared variables instead of running the drill on the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoveryd.drills.loader import load_playbook
from recoveryd.errors import ConfigError

BOOK = """\
apiVersion: recoveryd/v1
kind: Drill
name: v
vars:
  name: default
  region: north
steps:
  - {name: s, run: [echo, "{{ name }}", "{{ region }}", "{{ extra }}"]}
"""


def write(tmp_path: Path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(BOOK)
    return path


def test_a_misspelt_variable_is_refused(tmp_path: Path) -> None:
    """`--var nmae=x` names the file, the `vars` key and the declared variables."""
    with pytest.raises(ConfigError, match=r"p\.yaml:4: vars: variable \"nmae\" .*name, region"):
        load_playbook(write(tmp_path), vars={"nmae": "x", "extra": "1"})


def test_declared_and_used_variables_are_accepted(tmp_path: Path) -> None:
    """A declared variable, or one the templates use without declaring it, is accepted."""
    loaded = load_playbook(write(tmp_path), vars={"name": "x", "extra": "1"})
    assert loaded.playbook.steps[0].run == ["echo", "x", "north", "1"]


def test_a_variable_declared_by_an_included_playbook_is_accepted(tmp_path: Path) -> None:
    """Variables of included playbooks count as known."""
    (tmp_path / "inc.yaml").write_text(
        "apiVersion: recoveryd/v1\nkind: Drill\nname: inc\nvars: {depth: '1'}\n"
        "steps:\n  - {name: i, run: [echo, '{{ depth }}']}\n"
    )
    main = tmp_path / "main.yaml"
    main.write_text(
        "apiVersion: recoveryd/v1\nkind: Drill\nname: m\nsteps:\n  - {name: s, include: inc.yaml}\n"
    )
    loaded = load_playbook(main, vars={"depth": "3"})
    assert loaded.playbook.steps[0].run == ["echo", "3"]
