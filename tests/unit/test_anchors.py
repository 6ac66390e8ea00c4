"""Logs anchored off the host: the heads of the audit log, drill journals and incident
records are written, keyed, into the store after every audited command; deleting,
truncating or rewriting a local log is found (exit 3), later records are only "not yet
anchored". A filesystem target stands for the store here (Object Lock on a real store:
tests/integration/stores/test_object_lock.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from recoveryd.audit import AuditLog
from recoveryd.chain import HashChain
from recoveryd.cli.main import main


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A configuration with one SQLite source, its key, and one backup (the repository)."""
    db = tmp_path / "reg.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x)")
    conf = tmp_path / "recoveryd.yaml"
    conf.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"encryption: {{key_file: {tmp_path / 'master.key'}}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path / 'store'}}}}}\n"
        f"sources: {{reg: {{kind: sqlite, path: {db}, targets: [local]}}}}\n"
    )
    assert main(["--config", str(conf), "key", "generate"]) == 0
    assert main(["--config", str(conf), "init"]) == 0
    assert main(["--config", str(conf), "backup"]) == 0
    return conf


def _cli(conf: Path, *args: str) -> int:
    return main(["--config", str(conf), *args])


def _audit(conf: Path) -> Path:
    return conf.parent / "state" / "audit.jsonl"


def test_every_audited_command_leaves_a_keyed_anchor_in_the_store(site: Path) -> None:
    """After a command the store holds an anchor naming the audit log's record count and
    head, with a MAC; `audit verify` is then clean (exit 0)."""
    anchors = sorted((site.parent / "store" / "anchors").rglob("*"))
    files = [p for p in anchors if p.is_file()]
    assert files
    doc = json.loads(files[-1].read_bytes())
    assert doc["format"] == "recoveryd-anchor-v1" and len(doc["mac"]) == 64
    status = HashChain(_audit(site)).verify()
    assert doc["logs"]["audit.jsonl"] == {"records": status.records, "head": status.head}
    assert _cli(site, "audit", "verify") == 0


def test_deleting_the_audit_log_no_longer_verifies(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rm audit.jsonl` is found by `audit verify` (exit 3, "deleted"), and stays found on
    the next run: the new, shorter log is not anchored over the old head."""
    _audit(site).unlink()
    capsys.readouterr()
    assert _cli(site, "audit", "verify") == 3
    assert "audit.jsonl: deleted" in capsys.readouterr().err
    assert _cli(site, "audit", "verify") == 3
    assert "audit.jsonl: truncated" in capsys.readouterr().err


def test_truncating_the_audit_log_is_found(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Removing the last records (the chain of the rest is intact) is exit 3, "truncated"."""
    lines = _audit(site).read_text().splitlines(keepends=True)
    _audit(site).write_text("".join(lines[:-1]))
    capsys.readouterr()
    assert _cli(site, "audit", "verify") == 3
    assert "truncated" in capsys.readouterr().err


def test_rewriting_the_audit_log_whole_is_found(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log rewritten with a consistent chain (every hash recomputed) passes the local
    check but not the anchor: exit 3, "rewritten"."""
    records = AuditLog(_audit(site).parent).records()
    _audit(site).unlink()
    chain = HashChain(_audit(site))
    for rec in records:
        body = {k: v for k, v in rec.items() if k not in ("seq", "prev", "hash")}
        chain.append({**body, "result": "ok", "user": "someone-else"})
    capsys.readouterr()
    assert _cli(site, "audit", "verify") == 3
    assert "rewritten" in capsys.readouterr().err


def test_records_after_the_newest_anchor_are_not_yet_anchored(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record appended without an anchor after it (the daemon between anchors, a store
    unreachable) is reported as not yet anchored, not as tampering (exit 0)."""
    AuditLog(_audit(site).parent).record(origin="daemon", command="backup", result="ok")
    capsys.readouterr()
    assert _cli(site, "audit", "verify") == 0
    assert "1 record(s) after the anchor" in capsys.readouterr().err


def test_a_forged_anchor_is_found(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An anchor whose MAC does not match (written without the master key) is exit 3."""
    newest = sorted(p for p in (site.parent / "store" / "anchors").rglob("*") if p.is_file())[-1]
    doc = json.loads(newest.read_bytes())
    doc["logs"]["audit.jsonl"]["records"] = 1
    forged = newest.with_name(newest.name.replace("Z-", "Z-", 1) + "0")
    forged.write_text(json.dumps(doc))
    capsys.readouterr()
    assert _cli(site, "audit", "verify") == 3
    assert "MAC does not match" in capsys.readouterr().err


def test_a_deleted_drill_journal_or_incident_record_is_found(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drill list --verify` and `incident list` compare journals and incident records with
    the anchor: a deleted one is exit 3 naming it."""
    book = site.parent / "ok.yaml"
    book.write_text("apiVersion: recoveryd/v1\nkind: Drill\nname: ok\nsteps:\n"
                    "  - {name: fine, run: ['true']}\n")  # fmt: skip
    assert _cli(site, "drill", "run", str(book)) == 0
    assert _cli(site, "incident", "open", "disk lost") == 0
    assert _cli(site, "drill", "list", "--verify") == 0
    assert _cli(site, "incident", "list") == 0
    state = site.parent / "state"
    (journal,) = state.glob("drills/*/journal.jsonl")
    journal.unlink()
    (incident,) = state.glob("incidents/*.jsonl")
    incident.unlink()
    capsys.readouterr()
    assert _cli(site, "drill", "list", "--verify") == 3
    assert "journal.jsonl: deleted" in capsys.readouterr().err
    assert _cli(site, "incident", "list") == 3
    assert f"incidents/{incident.name}: deleted" in capsys.readouterr().err
