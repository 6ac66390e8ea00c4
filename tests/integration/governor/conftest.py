"""A configuration with a filesystem target and directory sources, for governed snapshots."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from recoveryd.config import LoadedConfig, load_config
from tests.initrepo import init_repositories

CONFIG = """\
state_dir: {tmp}/state
encryption: {{key_file: {tmp}/master.key}}
targets:
  local: {{kind: filesystem, path: {tmp}/store{bandwidth}}}
sources:
  tiles: {{kind: directory, path: {tmp}/tiles, targets: [local], priority: normal}}
  cache: {{kind: directory, path: {tmp}/cache, targets: [local], priority: normal, rpo: 1h}}
{governor}
"""


def make_tree(root: Path, megabytes: int) -> None:
    """Incompressible files, so the snapshot has many chunks to upload."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(megabytes):
        (root / f"tile-{i:04d}.bin").write_bytes(os.urandom(1024 * 1024))


@pytest.fixture
def governed_config(tmp_path: Path) -> Callable[..., LoadedConfig]:
    """`governed_config(governor_yaml="", megabytes=8, bandwidth=None)` -> a loaded config
    with a key, a filesystem store and two directory sources (`cache` has an RPO of 1h)."""

    def make(
        governor_yaml: str = "", megabytes: int = 8, bandwidth: str | None = None
    ) -> LoadedConfig:
        from recoveryd import app

        make_tree(tmp_path / "tiles", megabytes)
        make_tree(tmp_path / "cache", 2)
        path = tmp_path / "recoveryd.yaml"
        path.write_text(
            CONFIG.format(
                tmp=tmp_path,
                governor=governor_yaml,
                bandwidth=f", max_bandwidth: {bandwidth}" if bandwidth else "",
            )
        )
        cfg = load_config(path)
        app.generate_key(cfg)
        init_repositories(path)
        return cfg

    return make
