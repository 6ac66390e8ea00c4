"""Wrong credentials against real servers: one clear line naming what to fix, never the
secret, never a traceback, nothing committed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target
from tests.fixtures.objectstores import TargetSpec


@pytest.mark.integration
def test_wrong_s3_secret_is_one_line_naming_the_target(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """A wrong secret key for Ceph RGW fails the backup (exit 1) with one line naming the
    target; the wrong secret is not shown."""
    db = tmp_path / "r.db"
    demo_data.create_sqlite(db, 200)
    spec = target_factory("ceph")
    assert spec.credentials_file is not None
    wrong = "WrongSecretKey-0123456789abcdef"
    spec.credentials_file.write_text(
        spec.credentials_file.read_text().replace(
            spec.server.secret_key if spec.server else "", wrong
        )
    )
    deployment.configure(
        targets={"primary": spec.yaml()},
        sources={"reg": {"kind": "sqlite", "path": str(db), "targets": ["primary"]}},
        init=False,  # init itself fails on the credentials the same way
    )
    result = deployment.cli("backup")
    assert result.code == 1, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "primary" in lines[0]
    assert wrong not in result.err
    assert "Traceback" not in result.err


@pytest.mark.integration
def test_wrong_database_password_names_the_source(
    deployment: Deployment, tmp_path: Path, pg_server: Any
) -> None:
    """A wrong PostgreSQL password fails the backup (exit 1) naming the source, without the
    password; nothing is listed afterwards."""
    db = pg_server.create_database("e2e_wrongpw")
    pw = tmp_path / "wrong.pw"
    pw.write_text("not-the-password-42\n")
    pw.chmod(0o600)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "population": {
                "kind": "postgresql",
                "dsn": pg_server.dsn(db),
                "password_file": str(pw),
                "targets": ["local"],
            }
        },
    )
    result = deployment.cli("backup")
    assert result.code == 1, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "population" in lines[0]
    assert "not-the-password-42" not in result.err
    assert deployment.snapshots() == []
