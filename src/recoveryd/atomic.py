"""Durable local files written atomically: temp file, fsync, rename, fsync the directory.

A crash leaves either the old file or the new one, never a torn mix. The one
place this dance is written; state files, reports, restored SQLite databases
and the filesystem object store all use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` durable. A directory that is gone, or a
    filesystem that cannot sync directories, is not an error: there is nothing to sync."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: Path,
    *,
    mode: int = 0o640,
    exclusive: bool = False,
    tmp_prefix: str | None = None,
    tmp_suffix: str = "",
    check: Callable[[Path], None] | None = None,
) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content into; it replaces `path` when the block ends.

    The temp file (`tmp_prefix` + a random name + `tmp_suffix`, in `path`'s directory,
    created with `mode`) is flushed and fsynced, handed to `check` (which may raise to refuse it),
    then renamed over `path` and the directory fsynced. With `exclusive`, an existing
    `path` is never replaced: FileExistsError instead (a hard link, atomic). On any
    error the temp file is removed and `path` is untouched.
    """
    prefix = tmp_prefix if tmp_prefix is not None else f".{path.name}."
    tmp = path.with_name(f"{prefix}{uuid.uuid4().hex}{tmp_suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if check is not None:
            check(tmp)
        if exclusive:
            os.link(tmp, path)  # fails when `path` exists: atomic and exclusive
            tmp.unlink()
        else:
            tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o640) -> None:
    """Replace `path` with `data` atomically and durably (see `atomic_writer`)."""
    with atomic_writer(path, mode=mode) as fh:
        fh.write(data)
