"""Fixtures of the report tests: a state directory holding the sample drill and state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.reports import sample


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory with the sample drill journal and state store."""
    sample.make_state_dir(tmp_path / "state")
    return tmp_path / "state"
