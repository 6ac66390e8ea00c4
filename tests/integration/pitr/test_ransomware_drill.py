"""The shipped ransomware drill (`playbooks/ransomware-pitr.yaml`) on a real PostgreSQL 15
archiving with `wal-push`: the attack rewrites rows and drops a table, the drill
recovers to the moment before it into a scratch server, and RTO and RPO are measured."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from recoveryd.app.scratch import remove_scratch
from tests.fixtures.pgarchive import setup_archive
from tests.fixtures.postgres import free_port
from tests.forkcli import run_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "ransomware-pitr.yaml"


def test_the_ransomware_drill_recovers_the_registry_to_before_the_attack() -> None:
    """The drill passes with its objectives met; the recovered server holds every row as
    it was before the attack, the dropped table, and no canary row written after it."""
    root = Path(tempfile.mkdtemp(prefix="recoveryd-ransomware-"))
    a = None
    scratch = root / "scratch"
    try:
        a = setup_archive(root)
        a.sql(a.port, "create table citizens (id int primary key, name text)")
        a.sql(
            a.port, "insert into citizens select g, 'citizen ' || g from generate_series(1, 5000) g"
        )
        a.sql(a.port, "create table ledger as select g as entry from generate_series(1, 100) g")
        cli = [sys.executable, "-m", "recoveryd", "--config", str(a.config)]
        backup = run_argv([*cli, "backup", "registry"])
        assert backup.returncode == 0, backup.stderr
        port = free_port()
        variables = {
            "recoveryd": str(Path(sys.executable).with_name("recoveryd")),
            "wal_get": str(a.exe),
            "config": str(a.config),
            "primary": a.dsn(a.port),
            "scratch_dir": str(scratch),
            "scratch_port": str(port),
            "work_dir": str(root),
        }
        run = subprocess.run(
            [
                *cli, "--json", "drill", "run", str(PLAYBOOK), "--yes",
                *(arg for k, v in variables.items() for arg in ("--var", f"{k}={v}")),
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        lines = run.stdout.splitlines()
        start = max(i for i, line in enumerate(lines) if line == "{")
        result = json.loads("\n".join(lines[start:]))
        journal = Path(result["journal"]).read_text() if result.get("journal") else ""
        assert run.returncode == 0, journal[-3000:]
        assert result["status"] == "passed"
        assert result["objectives_met"]
        assert result["rto_seconds"] is not None and result["rpo_seconds"] is not None
        assert a.sql(port, "select count(*) from citizens where name like 'citizen %'") == [(5000,)]
        assert a.sql(port, "select count(*) from ledger") == [(100,)]
    finally:
        if scratch.exists():
            remove_scratch(scratch)
        if a is not None:
            a.pg_ctl(a.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)
