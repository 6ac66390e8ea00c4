"""The fast path of an asynchronous `wal-push` (standard library only).

PostgreSQL runs `archive_command` once per WAL segment, one after another: with
`--spool DIR`, a background worker has usually archived the segment already and
left `DIR/<source>/<segment>.ok`. Answering that must not cost the seconds that
loading the whole product takes on a busy host, so the console entry point asks this
module first: when the acknowledgement is there, it is consumed and the answer is 0
before anything else is imported. Anything else goes the full way (`cmd_wal`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence


def acknowledged(argv: Sequence[str]) -> int | None:
    """0 when `argv` is `... wal-push SOURCE PATH --spool DIR ...` and the worker has
    acknowledged that file with the digest of its content (the acknowledgement is
    removed); None otherwise."""
    args = list(argv)
    if "wal-push" not in args or "--worker" in args:
        return None
    spool = _option(args, "--spool")
    rest = args[args.index("wal-push") + 1 :]
    positional = [a for i, a in enumerate(rest) if not a.startswith("-") and not _is_value(rest, i)]
    if spool is None or len(positional) < 2:
        return None
    source, path = positional[0], positional[1]
    if "/" in source or source.startswith("."):
        return None
    ok = os.path.join(spool, source, os.path.basename(path) + ".ok")  # noqa: PTH118, PTH119
    try:
        with open(ok, encoding="ascii") as f:  # noqa: PTH123
            digest = f.read().strip()
        with open(path, "rb") as f:  # noqa: PTH123
            same = hashlib.file_digest(f, "sha256").hexdigest() == digest
    except (OSError, ValueError):
        return None
    if not same:
        return None  # the full way removes an acknowledgement of other content
    try:
        os.unlink(ok)  # noqa: PTH108
    except OSError:
        return None
    return 0


_VALUED = {"--spool", "--config", "--log-level"}


def _option(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _is_value(args: list[str], i: int) -> bool:
    return i > 0 and args[i - 1] in _VALUED
