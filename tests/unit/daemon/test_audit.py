"""The audit log: every operation with who, what and the result; tampering is detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recoveryd.audit import AuditLog
from recoveryd.cli.main import main
from recoveryd.secrets import sanitize_args
from tests.unit.daemon.helpers import write_config


def test_arguments_are_recorded_without_secrets() -> None:
    """Secret options, secret-looking variables and DSN passwords are removed from arguments."""
    args = [
        "drill", "run", "p.yaml", "--var", "db_password=hunter2", "--var", "region=a",
        "--password", "s3cr3t", "--token=abc", "postgresql://u:pw1234@h/db",
    ]  # fmt: skip
    clean = sanitize_args(args)
    assert clean == [
        "drill", "run", "p.yaml", "--var", "db_password=***", "--var", "region=a",
        "--password", "***", "--token=***", "postgresql://u:***@h/db",
    ]  # fmt: skip


def test_edited_or_deleted_records_are_detected(tmp_path: Path) -> None:
    """Changing a byte of a record, or removing one, breaks the chain and says where."""
    log = AuditLog(tmp_path)
    for i in range(4):
        log.record(origin="cli", command="backup", args=[f"s{i}"], result="ok", exit_code=0)
    assert log.verify().ok and log.verify().records == 4
    lines = log.path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["result"] = "failed"
    log.path.write_text("\n".join([lines[0], json.dumps(rec), *lines[2:]]) + "\n")
    status = log.verify()
    assert not status.ok and "line 2" in (status.problem or "")
    log.path.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    status = log.verify()
    assert not status.ok and "line 2" in (status.problem or "")


def test_every_cli_command_is_audited_and_verify_exits_3_on_tampering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CLI commands append a record (OS user, command, arguments, result); `audit verify`
    exits 0 on an intact log and 3 on an edited one."""
    cfg = write_config(tmp_path, "sources: {}\n")
    conf = str(cfg.path)
    (tmp_path / "state").mkdir()  # read-only commands are audited where the state dir exists
    assert main(["--config", conf, "status"]) == 0
    assert main(["--config", conf, "audit", "verify"]) == 0
    log = AuditLog(tmp_path / "state")
    records = log.records()
    assert [r["command"] for r in records] == ["status", "audit verify"]
    assert records[0]["user"] and records[0]["origin"] == "cli" and records[0]["result"] == "ok"
    assert records[0]["args"] == ["--config", conf, "status"]
    text = log.path.read_text().replace('"status"', '"statux"', 1)
    log.path.write_text(text)
    capsys.readouterr()
    assert main(["--config", conf, "audit", "verify"]) == 3
    assert "line 1" in capsys.readouterr().err


def test_secret_variables_given_in_one_argument_are_removed() -> None:
    """`--var=api_key=X` (option and variable in one argument) hides the value like
    `--var api_key=X` does; a harmless variable stays readable."""
    clean = sanitize_args(["drill", "run", "p.yaml", "--var=api_key=k3y-9f8e", "--var=region=a"])
    assert clean == ["drill", "run", "p.yaml", "--var=api_key=***", "--var=region=a"]
    assert "k3y-9f8e" not in json.dumps(clean)
