"""The shipped shedding and surge playbooks validate completely."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = [
    ROOT / "playbooks" / "shed" / "essential-only.yaml",
    ROOT / "playbooks" / "shed" / "restore-full-service.yaml",
    ROOT / "playbooks" / "health-code-surge.yaml",
]


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.name)
def test_shipped_playbook_validates(path: Path) -> None:
    """`recoveryd drill validate` accepts each playbook the governor and the surge drill use."""
    try:
        loader = importlib.import_module("recoveryd.drills.loader")
    except ImportError:
        pytest.skip("the drill loader is not built")
    loaded = loader.load_playbook(path)
    assert loaded.playbook.steps


def test_shed_modes_keep_the_essential_routes() -> None:
    """Essential-only mode proxies /verify and /pay/verify and sheds the rest with Retry-After."""
    conf = (ROOT / "playbooks" / "shed" / "nginx" / "essential-only.conf").read_text()
    assert "location = /verify" in conf and "location = /pay/verify" in conf
    assert "return 503" in conf and "Retry-After" in conf
    page = (ROOT / "playbooks" / "shed" / "nginx" / "shed.html").read_text()
    assert "12345" in page and "service counter" in page and "窗口" in page
