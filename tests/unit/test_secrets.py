"""Secrets are masked in every text the product writes: DSN and URI passwords, known values."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_pass", True),
        ("PGPASSWORD", True),
        ("api_token", True),
        ("secret_access_key", True),
        ("Authorization", True),
        ("Proxy-Authorization", True),
        ("Cookie", True),
        ("X-Api-Key", True),
        ("password_file", False),
        ("key_path", False),
        ("passed", False),
        ("region", False),
    ],
)
def test_one_rule_says_which_names_are_secret(name: str, secret: bool) -> None:
    """Variables, headers, mapping keys and options share one rule; names of the place where a
    secret is kept (`*_file`, `*_path`) are not secrets themselves."""
    from recoveryd.secrets import is_secret_name

    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Cookie: session=abc123def; theme=dark", "abc123def"),
        ("X-Auth-Token: tok-778899", "tok-778899"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("POST https://oapi.example/robot/send?access_token=dt-4455", "dt-4455"),
        ("POST https://qyapi.example/cgi-bin/webhook/send?key=wc-99887766", "wc-99887766"),
    ],
)
def test_header_values_and_url_tokens_are_masked(text: str, hidden: str) -> None:
    """Secret header values and tokens carried in a webhook URL's query never survive."""
    assert hidden not in Redactor().redact(text)


def test_a_tree_masks_the_value_of_every_secret_key() -> None:
    """In a mapping (a log event, a journal or state record), the value under a secret key is
    masked whole, whatever it looks like; other values are redacted as text."""
    tree = {"headers": {"Authorization": "opaque"}, "vars": {"db_pass": "x1"}, "n": 3}
    assert Redactor().tree(tree) == {
        "headers": {"Authorization": "***"},
        "vars": {"db_pass": "***"},
        "n": 3,
    }


def test_passwords_inside_configured_dsns_and_urls_are_registered(tmp_path: Path) -> None:
    """Loading settings registers the password of a DSN or webhook URL, so that the bare
    value is masked wherever a tool echoes it alone."""
    from recoveryd.secrets import REDACTOR, register_configured

    register_configured(
        {"dsn": "postgresql://u:dsn-Pw-5566@h/db", "url": "https://x/?key=hook-Key-7788"},
        tmp_path,
    )
    assert REDACTOR.redact("dsn-Pw-5566 and hook-Key-7788") == "*** and ***"
