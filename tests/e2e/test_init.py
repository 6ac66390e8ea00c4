"""Repositories are created explicitly, by `recoveryd init`: a typo in a store path never
silently starts a new repository."""

from __future__ import annotations

from pathlib import Path

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target


def _sqlite(db: Path) -> dict[str, object]:
    return {"kind": "sqlite", "path": str(db), "targets": ["local"]}


def test_a_typo_in_the_store_path_is_an_error_pointing_to_init(
    deployment: Deployment, tmp_path: Path
) -> None:
    """With `path: ./stor` instead of `./store`, backup and snapshots exit 2 naming the
    target, the path and `recoveryd init`, and create nothing there."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 50)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")}, sources={"registry": _sqlite(db)}
    )
    deployment.backup()
    deployment.configure(targets={"local": fs_target(tmp_path / "stor")}, init=False)
    for args in (("backup",), ("snapshots",), ("verify",), ("prune",)):
        result = deployment.cli(*args).expect(2)
        assert "target local" in result.err and str(tmp_path / "stor") in result.err, args
        assert "recoveryd init local" in result.err
    assert not (tmp_path / "stor").exists()


def test_init_creates_once_and_then_leaves_the_repository_alone(
    deployment: Deployment, tmp_path: Path
) -> None:
    """`init` creates each target's repository; run again it changes nothing and says so;
    a target holding a repository of another master key is refused (exit 2)."""
    deployment.configure(
        targets={"local": fs_target(tmp_path / "a"), "nas": fs_target(tmp_path / "b")},
        init=False,
    )
    first = deployment.cli("--json", "init").expect(0).data["targets"]
    assert [(t["target"], t["created"]) for t in first] == [("local", True), ("nas", True)]
    again = deployment.cli("init", "nas").expect(0)
    assert "already holds a repository" in again.out and "nothing to do" in again.out
    deployment.key_file.rename(deployment.key_file.with_suffix(".old"))
    deployment.cli("key", "generate").expect(0)
    other = deployment.cli("init", "local").expect(2)
    assert "target local" in other.err and "does not open this repository" in other.err


def test_config_check_reports_targets_and_missing_source_paths(
    deployment: Deployment, tmp_path: Path
) -> None:
    """`config check` says which targets are ready and which hold no repository (pointing to
    init), and names a SQLite file or directory a source reads that does not exist."""
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "registry": _sqlite(tmp_path / "missing.db"),
            "files": {"kind": "directory", "path": str(tmp_path / "nodir"), "targets": ["local"]},
        },
    )
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store"), "new": fs_target(tmp_path / "new")},
        init=False,
    )
    doc = deployment.cli("--json", "config", "check").expect(0).data
    assert {t["target"]: t["state"] for t in doc["targets"]} == {"local": "ready", "new": "missing"}
    warnings = "\n".join(doc["warnings"])
    assert "recoveryd init new" in warnings
    assert "sources.registry.path" in warnings and "missing.db" in warnings
    assert "sources.files.path" in warnings and "nodir" in warnings
