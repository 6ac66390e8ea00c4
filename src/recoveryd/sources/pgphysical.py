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

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from recoveryd.sources import directory
from recoveryd.sources.base import ByteReader, CommandRunner, Process, SourceInfo
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


def restore_base_backup(
    source: str, runner: CommandRunner, stream: ByteReader, dest: str, info: SourceInfo
) -> None:
    """Extract a base backup into the new or empty directory `dest` (this host), with
    the mode PostgreSQL requires and, as root, the owner its files had."""
    tree = directory.DirectorySource(source, dest, runner=runner)
    tree.restore(stream, dest, replace(info, stream_format=directory.STREAM_FORMAT))
    root = Path(dest)
    root.chmod(0o700)
    marker = root / "PG_VERSION"
    if os.geteuid() == 0 and marker.exists():
        owner = marker.stat()
        os.chown(root, owner.st_uid, owner.st_gid)
