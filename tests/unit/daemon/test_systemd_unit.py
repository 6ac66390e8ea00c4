"""The shipped systemd files pass systemd's own checks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "systemd" / "recoveryd.service"
MAX_EXPOSURE = 2.0

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _unit_with_binary(tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart points at an executable this test creates
    (verify checks that the binary exists; the package installs /usr/bin/recoveryd)."""
    binary = tmp_path / "recoveryd"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    unit = tmp_path / "recoveryd.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/recoveryd ", f"{binary} "))
    return unit


@needs_systemd
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning about it."""
    unit = _unit_with_binary(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    about_us = [line for line in proc.stderr.splitlines() if "recoveryd" in line]
    assert proc.returncode == 0, proc.stderr
    assert about_us == []


@needs_systemd
def test_unit_exposure_is_at_most_2(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=true` rates the hardened unit 2.0 or better."""
    unit = _unit_with_binary(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_unit_declares_what_operators_rely_on() -> None:
    """Type=notify with a watchdog, restart on failure, the recoveryd user, credentials."""
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "User=recoveryd",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/recoveryd",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "PrivateTmp=yes",
        "ProtectHome=yes",
    ):
        assert line in text
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert re.search(r"^LoadCredential=", text, re.M)
    assert re.search(r"^RestrictAddressFamilies=", text, re.M)


def test_sysusers_and_tmpfiles_declare_the_user_and_directories() -> None:
    """The recoveryd system user and its state directory are created by systemd."""
    users = (ROOT / "systemd" / "recoveryd.sysusers").read_text()
    assert re.search(r"^u recoveryd ", users, re.M)
    tmpfiles = (ROOT / "systemd" / "recoveryd.tmpfiles").read_text()
    assert re.search(r"^d\s+/var/lib/recoveryd\s+0750\s+recoveryd\s+recoveryd", tmpfiles, re.M)
