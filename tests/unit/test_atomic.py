"""Durable local files are written in one place: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from recoveryd.atomic import atomic_writer, write_atomic

SRC = Path(__file__).resolve().parents[2] / "src" / "recoveryd"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    """When writing fails half-way, the file keeps its old content and nothing is left over."""
    target = tmp_path / "state.json"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_refused_check_keeps_the_old_file(tmp_path: Path) -> None:
    """`check` sees the complete temp file before the rename and can refuse it."""
    target = tmp_path / "db.sqlite"
    write_atomic(target, b"good")

    def refuse(path: Path) -> None:
        assert path.read_bytes() == b"bad"
        raise ValueError("not a database")

    with (
        pytest.raises(ValueError, match="not a database"),
        atomic_writer(target, check=refuse) as fh,
    ):
        fh.write(b"bad")
    assert target.read_bytes() == b"good"
    assert len(list(tmp_path.iterdir())) == 1


def test_exclusive_never_replaces(tmp_path: Path) -> None:
    """An exclusive write fails when the file exists and leaves it as it was."""
    target = tmp_path / "obj"
    with atomic_writer(target, exclusive=True) as fh:
        fh.write(b"first")
    with pytest.raises(FileExistsError), atomic_writer(target, exclusive=True) as fh:
        fh.write(b"second")
    assert target.read_bytes() == b"first"
    assert len(list(tmp_path.iterdir())) == 1


def test_no_module_renames_over_a_file_by_itself() -> None:
    """Outside `recoveryd.atomic`, no module of src/ calls `os.replace` or `Path.replace`
    with a temp file: the temp-file/fsync/rename dance is written once."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "atomic.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "replace"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("os", "tmp", "tmp_path")
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
