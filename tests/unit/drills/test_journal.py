"""The journal: the shared record format, redaction, truncation, tamper evidence."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from recoveryd.drills.journal import OUTPUT_LIMIT, Journal, truncate, verify_journal
from recoveryd.secrets import Redactor
from tests.unit.drills.helpers import cli, journal, write_playbook


def test_records_carry_type_time_and_the_chain(tmp_path: Path) -> None:
    """Each record has type, a UTC time with milliseconds and Z, seq, prev and hash."""
    clock = lambda: datetime(2026, 11, 23, 15, 1, 2, 345000, tzinfo=UTC)  # noqa: E731
    j = Journal(tmp_path / "j.jsonl", Redactor(["topsecret"]).redact, clock=clock)
    j.record("mark", mark="fault")
    j.record("step", name="x", output="pw topsecret and password=abc123", error=None)
    first, second = journal(tmp_path / "j.jsonl")
    assert first["type"] == "mark"
    assert first["time"] == "2026-11-23T15:01:02.345Z"
    assert (first["seq"], second["seq"]) == (0, 1)
    assert second["prev"] == first["hash"]
    assert "topsecret" not in second["output"]
    assert "abc123" not in second["output"]
    assert verify_journal(tmp_path / "j.jsonl").ok


def test_truncation_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    """Long output keeps its beginning and end with a note of the characters left out."""
    text = "A" * 6000 + "B" * 6000
    cut = truncate(text)
    assert len(cut) < OUTPUT_LIMIT
    assert cut.startswith("A" * 100)
    assert cut.endswith("B" * 100)
    m = re.search(r"\[\.\.\. (\d+) characters truncated \.\.\.\]", cut)
    assert m is not None
    assert int(m.group(1)) == len(text) - 5000 - 2000


def test_validate_command_names_file_and_line_and_exits_2(tmp_path: Path) -> None:
    """`recoveryd drill validate` prints one sentence with file:line and exits 2."""
    book = write_playbook(
        tmp_path,
        "apiVersion: recoveryd/v1\nkind: Drill\nname: v\nsteps:\n  - name: x\n    reboot: now\n",
    )
    done = cli("drill", "--state-dir", str(tmp_path), "validate", str(book))
    assert done.returncode == 2
    assert f"{book}:6: steps[0].reboot: unknown step kind" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_secret_cut_by_the_truncation_leaves_no_part_behind(tmp_path: Path) -> None:
    """Long output is truncated, but a secret (or a DSN password) that straddles either cut
    is masked whole: no prefix or suffix of it survives in the journal."""
    secret = "Sup3rSecretValue-0123456789"
    half = len(secret) // 2
    text = "x" * (5000 - half) + secret + "y" * 8000  # the secret spans the head's cut
    text += "host=db password=Hunter2Hunter2Hunter2 " + "w" * 1985  # the password, the tail's
    j = Journal(tmp_path / "j.jsonl", Redactor([secret]).redact)
    j.record("step", name="long", output=text, error=None)
    (rec,) = journal(tmp_path / "j.jsonl")
    out = rec["output"]
    assert "characters truncated" in out
    for piece in (secret[:half], secret[half:], "Hunter2Hunter2"[:8], "Hunter2Hunter2"[-8:]):
        assert piece not in out
    assert verify_journal(tmp_path / "j.jsonl").ok
