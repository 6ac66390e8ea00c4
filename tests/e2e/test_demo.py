"""`make run` keeps working: the demo completes its round trip in one folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_round_trip_in_one_folder(tmp_path: Path) -> None:
    """`python -m recoveryd.demo` backs up, lists, verifies, restores and finds the copy
    identical; everything it made is inside its folder; running it again starts afresh."""
    folder = tmp_path / "demo"
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "recoveryd.demo", "--dir", str(folder), "--rows", "3000"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "the restored copy is identical" in done.stdout
        assert "identical" in done.stdout
        assert "Traceback" not in done.stderr
    made = {p.name for p in folder.iterdir()}
    assert {"recoveryd.yaml", "keys", "store", "state", "restored"} <= made
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    """The demo never wipes a folder that is not its own."""
    (tmp_path / "precious.txt").write_text("keep me")
    done = subprocess.run(
        [sys.executable, "-m", "recoveryd.demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "not a demo folder" in done.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
