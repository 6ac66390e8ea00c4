"""The `recoveryd` console command: the fast path of an acknowledged asynchronous
`wal-push` (`walfast`), else the whole command line (`main`)."""

from __future__ import annotations

import sys


def main() -> int:
    from recoveryd.cli.walfast import acknowledged

    code = acknowledged(sys.argv[1:])
    if code is not None:
        return code
    from recoveryd.cli.main import main as full

    return full()
