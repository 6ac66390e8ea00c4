"""Logging: JSON lines for the journal, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging

from recoveryd.observe import configure_logging, get_logger
from recoveryd.secrets import redact, register


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_daemon_logs_json_lines_when_not_on_a_terminal() -> None:
    """Under systemd (stdout not a TTY) each event is one JSON object with level and time."""
    out = io.StringIO()
    configure_logging("info", daemon=True, stream=out)
    get_logger("recoveryd.test").info("snapshot_done", source="pop", bytes_read=42)
    (rec,) = _lines(out)
    assert rec["event"] == "snapshot_done"
    assert rec["source"] == "pop" and rec["bytes_read"] == 42
    assert rec["level"] == "info" and str(rec["timestamp"]).endswith("Z")


def test_secrets_are_redacted_from_every_log_line() -> None:
    """Password-like keys, DSN and URL passwords and registered secret values never reach a log."""
    out = io.StringIO()
    configure_logging("debug", daemon=True, stream=out)
    register("s3-Secret-Value-123")
    log = get_logger("recoveryd.test")
    log.info(
        "connect",
        password="hunter2",
        dsn="host=db1 user=backup password='p w' dbname=x",
        url="mysql://backup:topsecret@db2:3306/legal",
        note="key is s3-Secret-Value-123",
        nested={"secret_access_key": "AKIA...", "items": ["token=abc123"]},
        password_file="/etc/recoveryd/pw",
    )
    logging.getLogger("botocore").warning("auth with s3-Secret-Value-123 failed")
    text = out.getvalue()
    for secret in ("hunter2", "'p w'", "topsecret", "s3-Secret-Value-123", "AKIA", "abc123"):
        assert secret not in text
    rec = _lines(out)[0]
    assert rec["password"] == "***"
    assert rec["password_file"] == "/etc/recoveryd/pw"  # a reference, not a secret
    assert rec["url"] == "mysql://backup:***@db2:3306/legal"


def test_exceptions_are_redacted_too() -> None:
    """A traceback that quotes a DSN does not leak its password."""
    out = io.StringIO()
    configure_logging("info", daemon=True, stream=out)
    try:
        raise RuntimeError("cannot connect to postgresql://u:pa55word@h/db")
    except RuntimeError:
        get_logger("recoveryd.test").exception("failed")
    assert "pa55word" not in out.getvalue()
    assert "***" in out.getvalue()


def test_cli_logs_to_stderr_and_console_on_a_terminal() -> None:
    """On a terminal the output is a readable line, not JSON."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    configure_logging("info", daemon=False, stream=out)
    get_logger("recoveryd.test").info("hello", who="operator")
    assert not out.getvalue().startswith("{")
    assert "hello" in out.getvalue() and "who=operator" in out.getvalue()


def test_redact_text_masks_libpq_and_uri_passwords() -> None:
    """Both DSN styles are masked whatever the password length."""
    assert redact("host=a password=x") == "host=a password=***"
    assert redact("https://u:p@h/") == "https://u:***@h/"
