"""The one helper tests use to create repositories: `recoveryd init`, as an operator does
after `recoveryd key generate` (no other command creates a repository)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from recoveryd.cli.main import main


def init_repositories(config: Path | str, *targets: str) -> str:
    """Run `recoveryd --config CONFIG init [TARGET...]` in-process (its output captured, so
    it does not mix with what a test reads from stdout); returns that output. Fails the
    test with the error when init fails."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), "init", *targets])
    assert code == 0, f"recoveryd init exited {code}: {err.getvalue()}"
    return out.getvalue()
