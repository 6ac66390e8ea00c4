"""The one module that writes to stdout/stderr for the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

_EMITTED: list[bool] = []  # one entry per document written by this process's commands


def emit_json(document: Any) -> None:
    """Write the single JSON document of a `--json` command to stdout."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()
    _EMITTED.append(True)


def begin_command() -> None:
    """Forget documents of an earlier command run in the same process (tests, the demo)."""
    _EMITTED.clear()


def emitted() -> bool:
    """True when the running command already wrote its JSON document."""
    return bool(_EMITTED)


def emit_error(code: str, message: str, exit_code: int) -> None:
    """The `--json` document of a command that failed before writing its own:
    `{"error": {"code", "message", "exit"}}` (secrets masked). Nothing when the command
    already wrote its document (a partial backup lists its failures there)."""
    from recoveryd.secrets import redact

    if emitted():
        return
    emit_json({"error": {"code": code, "message": redact(message), "exit": exit_code}})


def line(text: str = "") -> None:
    """A line of human-readable output on stdout."""
    print(text)


def error(text: str) -> None:
    """One line on stderr: `recoveryd: <message>`, with known secrets masked; a message of
    several problems (one per line) gives one such line per problem."""
    from recoveryd.secrets import redact

    for line in redact(text).splitlines() or [""]:
        print(f"recoveryd: {line}", file=sys.stderr)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned text table."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def event(document: dict[str, Any]) -> None:
    """One structured JSON line on stderr (progress of unattended runs, warnings)."""
    sys.stderr.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    sys.stderr.flush()


def warn(text: str) -> None:
    """A warning line on stderr: `recoveryd: warning: <message>`, with known secrets masked."""
    from recoveryd.secrets import redact

    print(f"recoveryd: warning: {redact(text)}", file=sys.stderr)


def progress_line(text: str) -> None:
    """Draw (or redraw) the one-line progress bar on stderr, a terminal."""
    sys.stderr.write("\r" + text + "\x1b[K")
    sys.stderr.flush()


def progress_clear() -> None:
    """Remove the progress bar line from the terminal."""
    sys.stderr.write("\r\x1b[K")
    sys.stderr.flush()
