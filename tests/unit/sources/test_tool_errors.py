"""Errors of dump tools: one sentence naming the source, what the tool said, what to do."""

from __future__ import annotations

import sys

import pytest

from recoveryd.errors import SourceError
from recoveryd.sources.base import SourceInfo
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.procstream import ProcessStream, tool_failure


def test_failure_names_source_tool_status_and_hint() -> None:
    """A failed tool's error names the source, the tool, its status, its last words, and
    the fix for a known cause."""
    err = tool_failure(
        "population",
        "psql",
        2,
        "psql: error: connection to server failed: "
        'FATAL:  password authentication failed for user "b"\n'
        'password retrieved from file "/tmp/recoveryd-x.pgpass"\n',
    )
    assert str(err) == (
        "source population: psql failed (exited with status 2): psql: error: connection to"
        ' server failed: FATAL:  password authentication failed for user "b";'
        " check the user in dsn and the password_file"
    )


def test_secrets_are_scrubbed_and_output_bounded() -> None:
    """Secrets in the tool's output never reach the message; long output is cut."""
    err = tool_failure("legal", "mariadb", 1, "oops hunter2 " * 500, ["hunter2"])
    assert "hunter2" not in str(err)
    assert len(str(err)) < 600


def test_killed_tool_says_so() -> None:
    """A tool killed by a signal is reported as killed, not as a normal failure."""
    assert "was killed by signal 9" in str(tool_failure("p", "pg_dump", -9, ""))


def test_command_not_found_over_ssh_says_not_installed() -> None:
    """Exit status 127 with `command not found` (a remote shell) means not installed."""
    err = tool_failure("p", "pg_dump", 127, "env: 'pg_dump': No such file or directory")
    assert str(err) == (
        "source p: pg_dump is not installed or not on PATH; install the client tools"
    )


def test_stream_accepts_only_the_statuses_a_tool_documents_as_success() -> None:
    """A stream whose tool exits 1 fails finish() by default, but passes where the tool
    documents 1 as success (GNU tar: a file changed while read), with the status kept."""
    info = SourceInfo(kind="directory", stream_format="tar-pax")
    argv = [sys.executable, "-c", "print('data'); raise SystemExit(1)"]
    strict = ProcessStream(source="geo", tool="tar", proc=LocalRunner().start(argv), info=info)
    with pytest.raises(SourceError, match="source geo: tar failed"):
        strict.finish()
    lenient = ProcessStream(
        source="geo", tool="tar", proc=LocalRunner().start(argv), info=info, ok_statuses=(0, 1)
    )
    assert lenient.read(100).startswith(b"data")
    lenient.finish()
    assert lenient.exit_status == 1
