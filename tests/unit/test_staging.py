"""Private staging folders: 0700 under the state directory, removed on exit, and swept only
when their process is gone (a folder in use by a concurrent run is never touched)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from recoveryd.staging import staging_folder, sweep


def test_a_folder_is_private_and_removed_on_any_exit(tmp_path: Path) -> None:
    """The folder and its parent are 0700; it is gone after the block, even on an error."""
    state = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt), staging_folder(state, "source-x") as folder:
        (folder / "copy.db").write_bytes(b"plaintext")
        assert folder.stat().st_mode & 0o777 == 0o700
        assert (state / "staging").stat().st_mode & 0o777 == 0o700
        raise KeyboardInterrupt
    assert not folder.exists()


def test_a_folder_in_use_is_never_swept(tmp_path: Path) -> None:
    """While a run holds its folder, a sweep (another run starting) leaves it alone."""
    state = tmp_path / "state"
    with staging_folder(state, "source-x") as folder:
        assert sweep(state) == []
        with staging_folder(state, "source-y"):
            assert folder.exists()


def test_the_folder_of_a_killed_process_is_swept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A process killed outright (SIGKILL) keeps no lock: the next sweep removes its folder
    and says so."""
    state = tmp_path / "state"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from recoveryd.staging import staging_folder\n"
        "with staging_folder(Path(sys.argv[1]), 'source-x') as f:\n"
        "    (f / 'copy.db').write_bytes(b'plaintext')\n"
        "    print(f, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    folder = Path(proc.stdout.readline().strip())
    assert sweep(state) == []  # still alive
    proc.kill()
    proc.wait()
    assert (folder / "copy.db").exists()
    with caplog.at_level(logging.WARNING):
        assert sweep(state) == [folder]
    assert not folder.exists()
    assert f"removed {folder}: staging folder left by an interrupted run" in caplog.text
