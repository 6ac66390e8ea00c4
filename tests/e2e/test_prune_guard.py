"""Retention cannot erase a source: a policy that keeps nothing is a configuration error,
prune keeps the newest snapshot and the newest verified one, and forgetting more than half
of a source's snapshots needs `--force`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target


def _source(db: Path, retention: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "sqlite", "path": str(db), "targets": ["local"], "retention": retention}


@pytest.mark.parametrize(
    ("retention", "key"),
    [
        ({"keep_last": 0}, "sources.registry.retention.keep_last"),
        ({"keep_last": 0, "daily": 7}, "sources.registry.retention.keep_last"),
        ({"daily": 0, "weekly": 0}, "sources.registry.retention"),
    ],
    ids=["keep_last-0", "keep_last-0-with-daily", "all-zero"],
)
def test_a_retention_keeping_nothing_is_a_configuration_error(
    deployment: Deployment, tmp_path: Path, retention: dict[str, Any], key: str
) -> None:
    """`keep_last: 0` or a policy whose every rule is zero fails `config check` with exit 2,
    naming the file, line and key, before anything could be pruned."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 50)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"registry": _source(db, {"keep_last": 1})},
    )
    deployment.configure(sources={"registry": _source(db, retention)}, init=False)
    result = deployment.cli("config", "check").expect(2)
    assert "recoveryd.yaml:" in result.err and f"{key}:" in result.err
    assert "every snapshot" in result.err
    deployment.cli("prune").expect(2)


def test_prune_needs_force_to_forget_more_than_half(deployment: Deployment, tmp_path: Path) -> None:
    """keep_last 1 over three snapshots would forget two of three: prune refuses (exit 5)
    naming the source and --force, and deletes nothing; a dry run shows the plan; with
    --force the newest snapshot is kept."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 50)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"registry": _source(db, {"keep_last": 1})},
    )
    ids = [deployment.backup()[0]["id"] for _ in range(3)]
    refused = deployment.cli("prune").expect(5)
    assert "registry" in refused.err and "--force" in refused.err
    assert len(deployment.snapshots()) == 3
    plan = deployment.cli("--json", "prune", "--dry-run").expect(0).data
    assert sorted(plan["targets"][0]["forgotten"]) == sorted(ids[:2])
    deployment.cli("prune", "--force").expect(0)
    assert [s["id"] for s in deployment.snapshots()] == [ids[-1]]


def test_prune_keeps_the_newest_verified_snapshot(deployment: Deployment, tmp_path: Path) -> None:
    """When only an older snapshot verified on a target, prune keeps it besides the newest:
    the last copy known to restore is never forgotten."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 50)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"registry": _source(db, {"keep_last": 1})},
    )
    first = deployment.backup()[0]["id"]
    deployment.cli("verify", first).expect(0)
    second = deployment.backup()[0]["id"]
    third = deployment.backup()[0]["id"]
    deployment.cli("prune", "--force").expect(0)
    kept = {s["id"] for s in deployment.snapshots()}
    assert kept == {first, third}
    assert second not in kept
