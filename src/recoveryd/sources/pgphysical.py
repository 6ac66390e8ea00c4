"""PostgreSQL physical base backups: `pg_basebackup` in tar format, streamed.

A source with `mode: physical` snapshots the whole cluster with `pg_basebackup
--format=tar --pgdata=- --wal-method=fetch --checkpoint=fast`: one tar stream on
stdout, never spooled to local disk, holding every data file and the WAL needed to
make it consistent, so a base backup restores on its own; with the WAL archive
(`wal-push`) it is the starting point of a recovery to any later moment. Unchanged
relation files are byte-identical between base backups and deduplicate.

The manifest records the WAL start and end points and the timeline that
`pg_basebackup --verbose` reports, and the server version. Restore extracts the
stream into an empty directory (confined like a directory source's restore) and
gives it the mode PostgreSQL requires (0700).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from recoveryd.sources.base import Process, SourceInfo
from recoveryd.sources.procstream import ProcessStream

STREAM_FORMAT = "pg_basebackup-tar"
_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")
_END = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)")


def basebackup_argv(tool: str, conninfo: str) -> list[str]:
    """The `pg_basebackup` command line of a streamed, self-contained base backup."""
    return [
        *(tool, "--format=tar", "--pgdata=-", "--wal-method=fetch", "--checkpoint=fast"),
        *("--verbose", "--no-password", "--dbname", conninfo),
    ]


class BaseBackupStream(ProcessStream):
    """`pg_basebackup`'s stdout; once it has ended, `info.consistency` carries the WAL
    start and end points and the timeline it reported."""

    def __init__(
        self,
        *,
        source: str,
        proc: Process,
        info: SourceInfo,
        secrets: list[str | None],
        head: bytes,
        cleanup: Callable[[bool], None],
    ) -> None:
        super().__init__(
            source=source,
            tool="pg_basebackup",
            proc=proc,
            info=info,
            secrets=secrets,
            head=head,
            cleanup=cleanup,
        )
        self._basebackup = proc

    def finish(self) -> None:
        super().finish()
        self.info = replace(
            self.info, consistency={**self.info.consistency, **wal_points(self._basebackup)}
        )


def wal_points(proc: Process) -> dict[str, str]:
    """`start_lsn`, `timeline` and `stop_lsn` from `pg_basebackup --verbose` output."""
    text = proc.stderr_text()
    points: dict[str, str] = {}
    if m := _START.search(text):
        points["start_lsn"], points["timeline"] = m.group(1), m.group(2)
    if m := _END.search(text):
        points["stop_lsn"] = m.group(1)
    return points
