"""Secrets are masked in every text the product writes: DSN and URI passwords, known values."""

from __future__ import annotations

import pytest

from recoveryd.secrets import Redactor


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("postgresql://app:s3cr3t@db:5432/population", "s3cr3t"),
        ("mysql://root:pa55word@127.0.0.1:3306/legal", "pa55word"),
        ("error at https://user:tok3n@oss.example.gov.cn/bucket", "tok3n"),
        ("host=db1 dbname=population user=backup password=hunter22", "hunter22"),
        ('{"password": "jsonpass"}', "jsonpass"),
    ],
)
def test_passwords_inside_dsns_and_uris_are_masked(text: str, hidden: str) -> None:
    """A password written inside a DSN or URI never survives redaction; the rest stays readable."""
    out = Redactor().redact(text)
    assert hidden not in out
    assert "***" in out


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    """A value resolved from a secret file is masked even outside any DSN."""
    redactor = Redactor(["correct-horse-battery"])
    assert redactor.redact("stderr: correct-horse-battery rejected") == "stderr: *** rejected"


def test_long_tool_output_without_uris_is_returned_unchanged() -> None:
    """Large dump-tool output (hundreds of KiB, long unbroken runs) passes through intact.

    The URI pattern once backtracked quadratically on such text; this input took
    seconds per call before the pattern was bounded.
    """
    text = ("x" * 100_000) + " ftp://" + ("y" * 100_000) + ":" + ("z" * 2000)
    assert Redactor().redact(text) == text
