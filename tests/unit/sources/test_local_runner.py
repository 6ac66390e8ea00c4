"""LocalRunner: argument lists, bounded stderr, kill, missing tools."""

from __future__ import annotations

import sys

import pytest

from recoveryd.sources.local import PIPE_SIZE, STDERR_LIMIT, LocalRunner, ToolNotFoundError


def test_run_returns_status_stdout_and_stderr() -> None:
    """run() gives the exit status, all of stdout and stderr, and feeds stdin."""
    status, out, err = LocalRunner().run(
        [
            sys.executable,
            "-c",
            "import sys; d=sys.stdin.read(); print(d.upper());"
            " sys.stderr.write('warn'); sys.exit(3)",
        ],
        input=b"hello",
    )
    assert (status, out, err) == (3, b"HELLO\n", "warn")


def test_arguments_are_never_interpreted_by_a_shell() -> None:
    """Shell metacharacters in arguments arrive verbatim."""
    arg = "$(touch /tmp/pwned); `id` | & ; *"
    _, out, _ = LocalRunner().run([sys.executable, "-c", "import sys; print(sys.argv[1])", arg])
    assert out.decode().strip() == arg


def test_stderr_is_bounded_and_never_blocks_the_command() -> None:
    """A command writing far more than a pipe holds to stderr still completes; only the
    last STDERR_LIMIT bytes are kept."""
    code = "import sys; sys.stderr.write('x' * 3_000_000 + 'END'); print('done')"
    status, out, err = LocalRunner().run([sys.executable, "-c", code], timeout=60)
    assert status == 0 and out == b"done\n"
    assert len(err) == STDERR_LIMIT and err.endswith("END")


def test_missing_tool_raises_tool_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that is not installed raises ToolNotFoundError naming it."""
    with pytest.raises(ToolNotFoundError, match="no-such-tool-xyz: not found"):
        LocalRunner().start(["no-such-tool-xyz"])


def test_extra_path_is_searched_after_path(tmp_path: pytest.TempPathFactory) -> None:
    """Tools outside PATH are found in the runner's extra directories."""
    tool = tmp_path / "mytool"  # type: ignore[operator]
    tool.write_text("#!/bin/sh\necho found\n")
    tool.chmod(0o755)
    runner = LocalRunner(extra_path=[tmp_path])  # type: ignore[list-item]
    assert runner.run(["mytool"])[1] == b"found\n"
    assert runner.which("mytool") == str(tool)


def test_kill_stops_a_running_command_and_read_ends() -> None:
    """kill() ends the command; reads then return b"" and wait() gives a signal status."""
    proc = LocalRunner().start(
        [sys.executable, "-c", "import time; print('x', flush=True); time.sleep(60)"]
    )
    assert proc.read(10).startswith(b"x")
    proc.kill()
    proc.kill()  # idempotent
    assert proc.read(10) == b""
    assert proc.wait() == -9


def test_run_timeout_kills_the_command() -> None:
    """A command running past its timeout is killed and TimeoutError raised."""
    with pytest.raises(TimeoutError):
        LocalRunner().run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)


def test_a_dump_tools_pipe_holds_most_of_a_megabyte() -> None:
    """A command's stdout pipe holds PIPE_SIZE bytes: a tool writing 768 KiB exits without
    anyone reading them (a default 64 KiB pipe would keep it blocked in its write)."""
    size = 768 * 1024
    assert size <= PIPE_SIZE
    proc = LocalRunner().start(["head", "-c", str(size), "/dev/zero"])
    assert proc.wait(timeout=60) == 0
