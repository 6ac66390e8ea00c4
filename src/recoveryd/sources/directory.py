"""Directories: a streamed pax tar made by GNU tar, restored by Python's tarfile.

Snapshot: `tar --format=pax` through the CommandRunner (so it also runs on a
remote host), preserving modes, owners (names and ids), mtimes, symlinks and
empty directories, with `exclude` patterns (GNU tar wildcards, matched
against member names such as `./cache/x` and against each name component,
so `*.tmp` excludes every such file and `./cache` one directory). The stream is made deterministic
for deduplication: members sorted by name, no atime/ctime records, and pax
header names without the process id. GNU tar exits 1 when a file changed while
it was read; that is accepted (the reader's `exit_status` is then 1), not a
failure: the directory is live, and every file in the stream is complete.

Restore: into a directory (created when missing, refused when it is not
empty), member by member into a hidden staging directory inside it, moved into
place only once the whole stream was read and authenticated (a stream that fails
part way leaves nothing behind), refusing anything that would land outside it:
absolute names, `..`, hard links or symlinks pointing outside, and paths that
go through an already extracted symlink. Owners are restored when running as
root (by numeric id).
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import stat
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

from recoveryd.errors import SourceError, UsageError
from recoveryd.sources.base import ByteReader, CommandRunner, SourceInfo
from recoveryd.sources.procstream import ProcessStream, start_tool

STREAM_FORMAT = "tar-pax"
_TAR_CHANGED = 1  # GNU tar: "some files differ" (changed while being read)


class DirectorySource:
    """A directory tree on the host where `runner` runs commands."""

    kind = "directory"

    def __init__(
        self, name: str, path: str, *, runner: CommandRunner, exclude: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.path = path
        self._runner = runner
        self._exclude = list(exclude)

    def snapshot(self) -> ProcessStream:
        """Start `tar -c` of the directory; SourceError when it does not exist."""
        status, out, _ = self._runner.run(["tar", "--version"], timeout=30)
        version = out.decode(errors="replace").splitlines()[0] if status == 0 and out else "tar"
        status, _, _ = self._runner.run(["test", "-d", self.path], timeout=30)
        if status != 0:
            raise SourceError(f"source {self.name}: directory {self.path} does not exist")
        argv = [
            "tar",
            "--create",
            "--file=-",
            "--format=pax",
            "--sort=name",
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
            f"--directory={self.path}",
            *(f"--exclude={pattern}" for pattern in self._exclude),
            ".",
        ]
        proc = start_tool(self.name, self._runner, argv)
        info = SourceInfo(
            kind=self.kind,
            stream_format=STREAM_FORMAT,
            engine_version=None,
            consistency={},
            extra={"path": self.path, "tool_version": version},
        )
        return ProcessStream(
            source=self.name, tool="tar", proc=proc, info=info, ok_statuses=(0, _TAR_CHANGED)
        )

    def restore(self, stream: ByteReader, dest: str, info: SourceInfo) -> None:
        """Extract into `dest` (created if missing; must be empty), refusing escapes."""
        if info.stream_format != STREAM_FORMAT:
            raise SourceError(f"source {self.name}: cannot restore a {info.stream_format} stream")
        root = Path(dest)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise UsageError(
                f"source {self.name}: {root} exists and is not an empty directory; "
                "restore into a new or empty directory"
            )
        created = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".recoveryd-restoring-{secrets.token_hex(8)}"
        staging.mkdir()
        try:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                    tar.extractall(  # noqa: S202 - every member passes _confined_filter
                        staging, numeric_owner=True, filter=_confined_filter(staging)
                    )
            except (tarfile.TarError, OSError) as exc:
                raise SourceError(f"source {self.name}: restore into {root} failed: {exc}") from exc
            _move_into_place(staging, root)
        except BaseException:
            # a stream that fails part way (damaged chunk, dump error, interruption) leaves
            # nothing behind: no truncated file may pass for restored data
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                shutil.rmtree(root, ignore_errors=True)
            raise


def _move_into_place(staging: Path, root: Path) -> None:
    """Move a completely extracted tree from `staging` (inside `root`) up into `root`,
    then give `root` the mode, owner and times the snapshot recorded for its top."""
    top = staging.stat()
    for entry in staging.iterdir():
        entry.rename(root / entry.name)
    staging.rmdir()
    os.chmod(root, stat.S_IMODE(top.st_mode))  # noqa: PTH101
    if os.geteuid() == 0:
        os.chown(root, top.st_uid, top.st_gid)
    os.utime(root, ns=(top.st_atime_ns, top.st_mtime_ns))


def _confined_filter(root: Path) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """A tarfile extraction filter that keeps modes and owners but refuses escapes."""
    real_root = os.path.realpath(root)

    def inside(path: str) -> bool:
        return path == real_root or path.startswith(real_root + os.sep)

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = member.name
        if name.startswith("/") or ".." in Path(name).parts:
            raise tarfile.OutsideDestinationError(member, name)
        parent = os.path.realpath(os.path.join(dest, posixpath.dirname(name)))  # noqa: PTH118
        if not inside(parent):
            raise tarfile.OutsideDestinationError(member, parent)
        if member.issym():
            target = posixpath.join(posixpath.dirname(name), member.linkname)
            if member.linkname.startswith("/") or not inside(
                os.path.normpath(os.path.join(real_root, target))  # noqa: PTH118
            ):
                raise tarfile.LinkOutsideDestinationError(member, member.linkname)
        elif member.islnk():
            target = os.path.realpath(os.path.join(dest, member.linkname))  # noqa: PTH118
            if member.linkname.startswith("/") or not inside(target):
                raise tarfile.LinkOutsideDestinationError(member, member.linkname)
        elif not (member.isfile() or member.isdir() or member.isfifo()):
            raise tarfile.SpecialFileError(member)
        elif os.path.islink(os.path.join(dest, name)):  # noqa: PTH114, PTH118
            raise tarfile.OutsideDestinationError(member, name)
        return member

    return check
