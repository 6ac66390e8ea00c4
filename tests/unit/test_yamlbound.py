"""The bounded YAML loader: regular files only, a size limit, no tags, no NUL, and limits on
depth, aliases and values, each refusal one ConfigError naming file, line and key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from recoveryd.errors import ConfigError
from recoveryd.yamlbound import MAX_BYTES, MAX_DEPTH, MAX_NODES
from recoveryd.yamlsrc import load, loads

LAUGHS = '["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'


def bomb(levels: int = 9) -> str:
    text = f"l0: &l0 {LAUGHS}\n"
    for i in range(1, levels + 1):
        text += f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n"
    return text


def test_an_alias_bomb_is_refused_at_the_value_limit() -> None:
    """Nine levels of nine aliases (9^9 values) stop at MAX_NODES values, naming the key."""
    with pytest.raises(ConfigError, match=rf"^b\.yaml:\d+: l\d.*: more than {MAX_NODES} values"):
        loads(bomb(), source="b.yaml")


def test_a_self_referencing_alias_is_refused() -> None:
    """`&a [*a]` would recurse forever: refused at the depth limit, naming the key."""
    with pytest.raises(ConfigError, match=rf"^r\.yaml:1: x\[0\].*deeper than {MAX_DEPTH}"):
        loads("x: &a [*a]\n", source="r.yaml")


def test_too_many_aliases_are_refused() -> None:
    """More than MAX_ALIASES aliases in one document is refused before expanding any."""
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 300) + "]\n"
    with pytest.raises(ConfigError, match=r"^m\.yaml:2: b\[256\]: more than 256 aliases"):
        loads(text, source="m.yaml")


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    """Thousands of nested lists end in one sentence, not in RecursionError."""
    with pytest.raises(
        ConfigError, match=r"^d\.yaml:1: x\S*: .*(nested deeper than|nesting depth)"
    ):
        loads("x: " + "[" * 5000 + "]" * 5000 + "\n", source="d.yaml")


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !include other.yaml\n", "!include"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !!python/object/apply:os.system [id]\n", "!!python/object/apply:os.system"),
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !!str 1\n", "!!str"),
    ],
)
def test_tags_are_refused(text: str, tag: str) -> None:
    """Every YAML tag is refused at its key: nothing is included, decoded or built."""
    with pytest.raises(ConfigError, match=rf"^t\.yaml:1: a: YAML tags \({tag}\) are not"):
        loads(text, source="t.yaml")


def test_a_raw_nul_is_refused_at_its_line_and_key() -> None:
    """A NUL byte in the file names the line and the key written on it."""
    with pytest.raises(ConfigError, match=r"^n\.yaml:3: a\.c: contains a NUL character"):
        loads("a:\n  b: 1\n  c: x\0y\n", source="n.yaml")


def test_an_escaped_nul_is_refused_at_its_key() -> None:
    """A NUL written as an escape in a quoted string ("\\0") is refused too."""
    with pytest.raises(ConfigError, match=r"^n\.yaml:3: p\[1\]: contains a NUL character"):
        loads('p:\n  - a\n  - "b\\0c"\n', source="n.yaml")


def test_a_number_too_long_to_read_names_the_key() -> None:
    """An integer of 5000 digits is refused at its key, not as "unexpected ValueError"."""
    with pytest.raises(ConfigError, match=r"^i\.yaml:1: n: 9+\.\.\. cannot be read"):
        loads("n: " + "9" * 5000 + "\n", source="i.yaml")


def test_a_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    """A named pipe is refused at once: the loader never opens it for a blocking read."""
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"c\.yaml: configuration file is a named pipe"):
        load(fifo, what="configuration file")


def test_a_device_is_refused(tmp_path: Path) -> None:
    """`/dev/zero` (even behind a symlink) is refused instead of read until memory runs out."""
    link = tmp_path / "c.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match=r"c\.yaml: playbook is a device"):
        load(link, what="playbook")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """A directory given as the file is refused with a sentence, not an OSError."""
    with pytest.raises(ConfigError, match=r"playbook is a directory"):
        load(tmp_path, what="playbook")


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    """A file larger than MAX_BYTES is refused after reading at most MAX_BYTES + 1 bytes."""
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(ConfigError, match=rf"big\.yaml: file is larger than {MAX_BYTES // 1024}"):
        load(big)


def test_a_document_knows_the_hash_of_its_bytes(tmp_path: Path) -> None:
    """The sha256 of the bytes read is kept (drill journals record it) without a second read."""
    path = tmp_path / "p.yaml"
    path.write_bytes(b"a: 1\n")
    assert load(path).sha256 == hashlib.sha256(b"a: 1\n").hexdigest()


def test_plain_keys_stay_text() -> None:
    """`on:` and `off:` are keys (a notify's `on`, a target named `off`), not booleans."""
    doc = loads("notify: {on: [failure]}\ntargets: {off: 1, yes: 2}\n", source="k.yaml")
    assert doc.data == {"notify": {"on": ["failure"]}, "targets": {"off": 1, "yes": 2}}
